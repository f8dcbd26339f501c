// Webhooks (api.md v1.1): run events POSTed to URLs the owner configured,
// signed with HMAC-SHA256 when the webhook has a secret. Each event a
// webhook subscribes to becomes a delivery, stored before it is sent and
// retried with exponential backoff (first_backoff, doubling) until a 2xx
// answer or max_attempts; deliveries left pending by a stopped host are
// sent after the next start.
//
// Every delivery runs asynchronously on the dispatcher's own io_context
// thread, each with its own deadline, so a slow or dead receiver delays
// neither runs (the bus handler only posts) nor other deliveries. Their
// records are written by a second thread, in order, so a database busy with
// runs never delays a POST either (a delivery is recorded as it is first
// sent, not before).
//
// Under a shared store (several hosts on one PostgreSQL database) every
// host sees every run's events (its own, and the others' relayed), so every
// host makes the deliveries of each event. A delivery's id is made from its
// webhook, run and event rather than drawn at random, so all of them make
// the same one; the host whose insert created the row attempts it (the
// others' inserts do nothing), before its first POST, and holds it while it
// retries. This rather than "only the host executing the run delivers":
// a run failed by another host's rescue, or cancelled while still queued,
// has no executing host to tell. A host that stops holding a pending
// delivery (it died) leaves it to the next refresh() of another host.
// Webhooks made or deleted on another host are seen here at the next
// refresh() (about every second); list() reads the store at once.
//
// Thread safety: every public member is [thread-safe].
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "automation/scheduler.hpp"
#include "automation/webhook_client.hpp"
#include "events/event_bus.hpp"
#include "model/automation.hpp"
#include "store/automation_store.hpp"

namespace nightshift {

struct WebhookOptions {
  std::chrono::milliseconds timeout{10000};       // a 2xx within this is success
  std::chrono::milliseconds first_backoff{1000};  // then 2 s, 4 s, ...
  std::uint32_t max_attempts = 8;
  std::size_t deliveries_kept = 200;  // finished deliveries kept per webhook
};

struct WebhookInput {
  std::string url;
  std::vector<std::string> events{std::string(kRunFinishedEvent)};
  std::optional<std::string> agent_id;
  std::optional<std::string> secret;
};

struct WebhookStats {
  std::uint64_t delivered = 0;        // deliveries answered 2xx
  std::uint64_t failed_attempts = 0;  // attempts that will be retried
  std::uint64_t failed = 0;           // deliveries given up after max_attempts
};

class Webhooks {
 public:
  // The Run object as api.md shapes it; set by the API layer, which owns
  // the wire format. Deliveries of events seen before it is set wait for it.
  using RunJson = std::function<boost::json::object(const Run&)>;

  Webhooks(EventBus& bus, AutomationStore& store, WebhookOptions options);
  ~Webhooks();
  Webhooks(const Webhooks&) = delete;
  Webhooks& operator=(const Webhooks&) = delete;

  void set_run_json(RunJson run_json);

  // Throws AutomationError(invalid_webhook): a bad URL, no or an unknown event.
  Webhook create(const WebhookInput& input);
  // Throws AutomationError(webhook_not_found).
  void remove(const std::string& id);
  std::vector<Webhook> list() const;
  // Newest first, at most `limit`. Throws AutomationError(webhook_not_found).
  std::vector<Delivery> deliveries(const std::string& webhook_id, std::size_t limit) const;

  // Stops sending; pending deliveries stay in the store. Idempotent.
  void stop();

  // How many webhooks this host makes deliveries for: under a shared store
  // those of the last refresh() and those made here since.
  std::size_t dispatching() const;

  // Under a shared store: re-reads the webhooks (other hosts' changes) and
  // takes over the pending deliveries no host holds. Nothing otherwise.
  void refresh();

  WebhookStats stats() const;

 private:
  struct Occurrence {
    std::vector<std::string> events;  // e.g. run.finished and run.failed
    Run run;
  };
  void on_event(const EventPtr& event);
  void make_deliveries(const Occurrence& occurrence);             // on the io thread
  void claim_shared(std::vector<Delivery> made, int tries_left);  // on the store thread
  void attempt(Delivery delivery);                                // on the io thread
  void on_answer(Delivery delivery, const WebhookAnswer& answer);
  void retry_later(Delivery delivery, std::chrono::milliseconds wait);
  std::optional<Webhook> find(const std::string& id) const;
  // How long this host holds a shared delivery past its next attempt: the
  // attempt's timeout and room for recording its outcome.
  std::chrono::milliseconds hold() const;
  // Claims the pending deliveries no host holds (a stopped host's, or on a
  // shared store one whose holder went away) and sends each at its time.
  void take_over_pending();

  AutomationStore& store_;
  const WebhookOptions options_;
  std::atomic<std::uint64_t> delivered_{0}, failed_attempts_{0}, failed_{0};

  // Held over a change of the webhooks in the store and in webhooks_, so
  // that a refresh() never drops a webhook created here meanwhile. Taken
  // before mutex_; the bus handler never takes it.
  std::mutex change_mutex_;
  mutable std::mutex mutex_;  // guards webhooks_, run_json_, waiting_
  std::vector<Webhook> webhooks_;
  RunJson run_json_;
  std::vector<Occurrence> waiting_;  // seen before run_json_ was set

  // Store writes of deliveries, in order, off the sending thread: a commit
  // that waits for the database lock never delays a POST.
  boost::asio::thread_pool store_thread_{1};
  boost::asio::io_context ioc_;
  WebhookTls tls_;  // used on ioc_'s thread only
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
  EventBus::Subscription subscription_;
};

}  // namespace nightshift
