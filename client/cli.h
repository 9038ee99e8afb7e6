// What every segqat command shares: the common flags (--server, --timeout,
// --json, --token-file, TLS), the connection they describe, how a job is
// printed, and following a job to its end. Internal to the command line
// (client/main.cc).
#ifndef SEGQAT_CLIENT_CLI_H_
#define SEGQAT_CLIENT_CLI_H_

#include <google/protobuf/message.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/client.h"
#include "job/flags.h"
#include "segqat/v1/jobs.pb.h"

namespace segqat::client {

// The common flags, alone and added to a command's own.
const std::vector<FlagSpec>& CommonFlags();
std::vector<FlagSpec> With(std::vector<FlagSpec> specs);
// Whether `a` is a common flag that takes a value.
bool IsCommonValueFlag(const std::string& a);

// Prints "segqat: CODE: message" on stderr; returns the exit code 1.
int Fail(const absl::Status& st);

// protobuf's JSON mapping on one line (--json).
std::string Json(const google::protobuf::Message& m);

// "jobs/ID" for "ID" or "jobs/ID" (common/job_name.h).
std::string JobNameOf(const std::string& arg);

// The client the common flags describe (exits with a message when the token
// or TLS files cannot be read).
std::unique_ptr<Client> ConnectFromFlags(const ParsedFlags& f);

// One job: a line and its artifacts, or protobuf's JSON mapping.
void PrintJob(const v1::Job& job, bool json);

// Follows a job to its end (or, with `until_seq` > 0, until that event);
// returns the exit code (0 when it succeeded).
int WaitFor(Client& client, const std::string& name, int64_t after, bool json, bool logs_only,
            bool summary = true, int64_t until_seq = 0);

}  // namespace segqat::client

#endif  // SEGQAT_CLIENT_CLI_H_
