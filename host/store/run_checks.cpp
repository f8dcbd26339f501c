// What both stores refuse to write (see run_row.hpp). Apart from run_row.cpp
// so that the PostgreSQL store's module links it without SQLite.
#include <stdexcept>
#include <string>

#include "store/run_row.hpp"

namespace nightshift::store {

void check_writable(const Run& run) {
  if (is_terminal(run.status) && !run.ended_at) {
    throw std::invalid_argument("run " + run.instance_id + " is " +
                                std::string(to_string(run.status)) + " but has no endedAt");
  }
}

}  // namespace nightshift::store
