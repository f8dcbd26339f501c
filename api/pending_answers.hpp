// HTTP answers that wait for work off the I/O threads (a pool job, a store
// commit). Each holds its session's strand and the function that sends the
// response; the work, wherever it finishes, hands the answer back through
// here, and it is posted to the session's strand.
//
// Why a table instead of capturing the session in the work's callback: the
// callback of an asynchronous start is held by the run manager, which lives
// longer than the server. Once close() has returned, nothing is posted to the
// server's io_context any more and every session reference held here is gone,
// whoever still holds a callback.
//
// Thread safety: every member is [thread-safe]. complete() only takes a short
// lock and posts, so it may be called from the store writer thread.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>
#include <cstdint>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace nightshift::api {

template <class Answer>
class PendingAnswers {
 public:
  using Id = std::uint64_t;
  using Deliver = std::function<void(Answer)>;  // runs on the strand it was added with

  // Registers an answer to come; `deliver` will be called on `strand`.
  Id add(boost::asio::any_io_executor strand, Deliver deliver) {
    std::lock_guard lock(mutex_);
    const Id id = next_id_++;
    if (open_) pending_.emplace(id, Entry{std::move(strand), std::move(deliver)});
    return id;
  }

  // Posts `make_answer()` for answer `id` to its strand, where it is called
  // and its result delivered. Does nothing after close() or for an id already
  // completed. `make_answer` runs on the strand: build the response there.
  template <class MakeAnswer>
  void complete(Id id, MakeAnswer&& make_answer) {
    std::lock_guard lock(mutex_);
    const auto found = pending_.find(id);
    if (found == pending_.end()) return;
    Entry entry = std::move(found->second);
    pending_.erase(found);
    // Posted under the lock so that close() cannot return while a post to
    // the io_context is under way.
    boost::asio::post(entry.strand, [deliver = std::move(entry.deliver),
                                     make = std::forward<MakeAnswer>(make_answer)]() mutable {
      deliver(make());
    });
  }

  // Drops every pending answer (and the session references they hold); no
  // answer is posted after this returns.
  void close() {
    std::unordered_map<Id, Entry> dropped;
    {
      std::lock_guard lock(mutex_);
      open_ = false;
      dropped.swap(pending_);
    }
  }

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return pending_.size();
  }

 private:
  struct Entry {
    boost::asio::any_io_executor strand;
    Deliver deliver;
  };

  mutable std::mutex mutex_;
  std::unordered_map<Id, Entry> pending_;
  Id next_id_ = 1;
  bool open_ = true;
};

}  // namespace nightshift::api
