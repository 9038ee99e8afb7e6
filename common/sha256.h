// SHA-256 (OpenSSL's libcrypto), shared by the server, which records and
// checks artifact digests, the workers, which upload and cache artifacts,
// and the client, which checks downloads.
#ifndef SEGQAT_COMMON_SHA256_H_
#define SEGQAT_COMMON_SHA256_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

struct evp_md_ctx_st;

namespace segqat {

// Lowercase hex digest; NotFound when the file cannot be read.
absl::StatusOr<std::string> FileSha256(const std::string& path);

// A digest fed piece by piece. Not thread-safe; not copyable.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(std::string_view data);
  // Lowercase hex of everything fed so far; ends the digest.
  std::string HexDigest();

 private:
  evp_md_ctx_st* ctx_;
};

}  // namespace segqat

#endif  // SEGQAT_COMMON_SHA256_H_
