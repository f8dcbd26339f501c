// The store's one failure that reaches every room, the API included: a write
// or read failed because the store cannot be reached or cannot write now
// (connection lost, database restarting, disk full), not because of what was
// asked. The StoreWriter holds such writes and retries them; the API answers
// such reads 503 store_unavailable with Retry-After.
#pragma once

#include <stdexcept>

namespace nightshift {

class StoreUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace nightshift
