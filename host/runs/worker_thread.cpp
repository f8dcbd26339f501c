#include "runs/worker_thread.hpp"

#include <climits>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

namespace nightshift {

namespace {

struct Start {
  std::function<void()> body;
  std::string name;
};

void* thread_entry(void* arg) noexcept {
  const std::unique_ptr<Start> start(static_cast<Start*>(arg));
  pthread_setname_np(pthread_self(), start->name.c_str());
  start->body();  // noexcept by contract: the run manager's body catches everything
  return nullptr;
}

}  // namespace

WorkerThread WorkerThread::start(std::size_t stack_bytes, const char* name,
                                 std::function<void()> body) {
  auto start = std::make_unique<Start>(Start{std::move(body), std::string(name).substr(0, 15)});
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  const auto min_stack = static_cast<std::size_t>(PTHREAD_STACK_MIN);
  pthread_attr_setstacksize(&attr, stack_bytes < min_stack ? min_stack : stack_bytes);
  WorkerThread thread;
  const int rc = pthread_create(&thread.thread_, &attr, &thread_entry, start.get());
  pthread_attr_destroy(&attr);
  if (rc != 0) throw std::system_error(rc, std::generic_category(), "could not start a thread");
  start.release();  // the thread owns it now
  thread.joinable_ = true;
  return thread;
}

WorkerThread::WorkerThread(WorkerThread&& other) noexcept
    : thread_(other.thread_), joinable_(std::exchange(other.joinable_, false)) {}

WorkerThread& WorkerThread::operator=(WorkerThread&& other) noexcept {
  if (this != &other) {
    join();
    thread_ = other.thread_;
    joinable_ = std::exchange(other.joinable_, false);
  }
  return *this;
}

WorkerThread::~WorkerThread() {
  join();
}

void WorkerThread::join() noexcept {
  if (!joinable_) return;
  pthread_join(thread_, nullptr);
  joinable_ = false;
}

void WorkerThread::detach() noexcept {
  if (!joinable_) return;
  pthread_detach(thread_);
  joinable_ = false;
}

}  // namespace nightshift
