// RunKey: a run's id as the key of an in-memory index (admission's members,
// the runs announced to clients). The host keeps such an entry for every
// active run and every recently finished one, and an id is 36 characters:
// as a std::string each copy took a heap block of 48 bytes besides the 32 of
// the string itself. A RunKey holds an id in the form the host gives its runs
// (a UUID in lower-case hex with dashes) in 16 bytes, and any other id (ids
// made by hand, in tests or older stores) as its text on the heap; it is 24
// bytes either way.
//
// Two keys are equal exactly when their ids are: a UUID in any other spelling
// (upper case) is kept as text, so it never equals the lower-case key.
//
// Thread safety: as a std::string.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace nightshift {

class RunKey {
 public:
  explicit RunKey(std::string_view id);
  RunKey(const RunKey& other);
  RunKey& operator=(const RunKey& other);
  RunKey(RunKey&&) noexcept = default;
  RunKey& operator=(RunKey&&) noexcept = default;
  ~RunKey() = default;

  // The id, as it was given.
  std::string text() const;
  // Whether the id is in the host's UUID form (kept in 16 bytes).
  bool compact() const noexcept { return other_ == nullptr; }

  friend bool operator==(const RunKey& a, const RunKey& b) noexcept;

  struct Hash {
    std::size_t operator()(const RunKey& key) const noexcept;
  };

 private:
  std::array<std::uint64_t, 2> uuid_{};  // the 32 hex digits, when compact()
  std::unique_ptr<const std::string> other_;
};

}  // namespace nightshift
