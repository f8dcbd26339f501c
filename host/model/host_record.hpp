// One host of those sharing a store, as GET /hosts shows it. A plain value.
#pragma once

#include <cstddef>
#include <string>

#include "model/run.hpp"

namespace nightshift {

struct HostRecord {
  std::string name;
  Timestamp started_at{};
  Timestamp last_seen_at{};
  bool alive = false;  // heartbeating within the lease
  std::size_t active_runs = 0;
  std::string version;
};

}  // namespace nightshift
