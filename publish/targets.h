#pragma once
// The two ways `kbundle publish` moves a PublishSet; internal to publish/.

#include <iosfwd>
#include <nlohmann/json.hpp>

#include "publish/artifacts.h"
#include "publish/publish.h"

namespace kb {

// A usage problem found after parsing (exit 2).
class PublishUsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Each fills `summary` (the --json document) and prints per node what to run; throws kb::Error.
void publish_s3(const PublishOptions& o, const PublishSet& set, nlohmann::json& summary, std::ostream& out,
                std::ostream& err, bool progress);
void publish_ssh(const PublishOptions& o, const PublishSet& set, nlohmann::json& summary, std::ostream& out,
                 std::ostream& err, bool progress);

}  // namespace kb
