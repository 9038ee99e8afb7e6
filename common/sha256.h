// SHA-256 of a file (OpenSSL's libcrypto), shared by the server, which
// records artifact digests, and the client, which checks downloads.
#ifndef SEGQAT_COMMON_SHA256_H_
#define SEGQAT_COMMON_SHA256_H_

#include <string>

#include "absl/status/statusor.h"

namespace segqat {

// Lowercase hex digest; NotFound when the file cannot be read.
absl::StatusOr<std::string> FileSha256(const std::string& path);

}  // namespace segqat

#endif  // SEGQAT_COMMON_SHA256_H_
