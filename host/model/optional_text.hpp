// OptionalText: an optional string that takes one pointer. A run's record
// has several texts that most runs never set (the runs it retries or was
// re-run from, its schedule, its error) and a live run keeps its record for
// as long as it runs: as std::optional<std::string> each of them took 40
// bytes of every run, set or not. Set, the text is an immutable string of
// its own on the heap, shared by the copies (a reference count, as
// boost::intrusive_ptr keeps it): a record is copied for every commit and
// every reader, and the host's name, which every running run of a host
// carries, is kept once.
//
// It reads like the std::optional<std::string> it replaces (has_value, *,
// ->, value_or, comparisons with texts and std::nullopt), is made from one,
// and converts to one when asked (a copy). The text cannot be changed in
// place; assign a new one.
//
// Thread safety: as a std::string. Copies of one value may be used and
// destroyed on different threads at once (the count is atomic).
#pragma once

#include <boost/smart_ptr/intrusive_ptr.hpp>
#include <boost/smart_ptr/intrusive_ref_counter.hpp>
#include <concepts>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace nightshift {

class OptionalText {
 public:
  OptionalText() noexcept = default;
  OptionalText(std::nullopt_t) noexcept {}  // NOLINT: as std::optional converts
  OptionalText(std::string text) : text_(new Block(std::move(text))) {}
  OptionalText(const char* text) : OptionalText(std::string(text)) {}
  OptionalText(std::string_view text) : OptionalText(std::string(text)) {}
  OptionalText(const std::optional<std::string>& text) {
    if (text) text_ = new Block(*text);
  }
  OptionalText(std::optional<std::string>&& text) {
    if (text) text_ = new Block(std::move(*text));
  }

  OptionalText(const OptionalText&) noexcept = default;
  OptionalText(OptionalText&&) noexcept = default;
  OptionalText& operator=(const OptionalText&) noexcept = default;
  OptionalText& operator=(OptionalText&&) noexcept = default;
  ~OptionalText() = default;

  OptionalText& operator=(std::nullopt_t) noexcept {
    text_.reset();
    return *this;
  }

  // A std::optional<std::string> with a copy of the text. Explicit: an
  // implicit one would hand functions that keep a pointer into their
  // argument (a statement binding without a copy) a temporary.
  explicit operator std::optional<std::string>() const {
    return text_ ? std::optional<std::string>(text_->text) : std::nullopt;
  }

  bool has_value() const noexcept { return text_ != nullptr; }
  explicit operator bool() const noexcept { return has_value(); }

  // The text; undefined when unset, as for std::optional.
  const std::string& operator*() const noexcept { return text_->text; }
  const std::string* operator->() const noexcept { return &text_->text; }

  // The text; throws std::bad_optional_access when unset.
  const std::string& value() const {
    if (!text_) throw std::bad_optional_access();
    return text_->text;
  }
  std::string value_or(std::string_view fallback) const {
    return text_ ? text_->text : std::string(fallback);
  }

  void reset() noexcept { text_.reset(); }
  template <class... Args>
  const std::string& emplace(Args&&... args) {
    text_ = new Block(std::string(std::forward<Args>(args)...));
    return text_->text;
  }

  friend bool operator==(const OptionalText& a, const OptionalText& b) noexcept {
    if (a.has_value() != b.has_value()) return false;
    return a.text_ == b.text_ || a.text_->text == b.text_->text;
  }
  friend bool operator==(const OptionalText& a, std::nullopt_t) noexcept { return !a.has_value(); }
  friend bool operator==(const OptionalText& a, const std::optional<std::string>& b) {
    if (a.has_value() != b.has_value()) return false;
    return !a.has_value() || a.text_->text == *b;
  }
  // Equal to a text when set to it.
  template <class Text>
  requires std::convertible_to<const Text&, std::string_view> &&
      (!std::same_as<Text, OptionalText>)friend bool
      operator==(const OptionalText& a, const Text& b) {
    return a.has_value() && std::string_view(a.text_->text) == std::string_view(b);
  }

 private:
  struct Block : boost::intrusive_ref_counter<Block, boost::thread_safe_counter> {
    explicit Block(std::string t) : text(std::move(t)) {}
    const std::string text;
  };
  boost::intrusive_ptr<const Block> text_;
};

}  // namespace nightshift
