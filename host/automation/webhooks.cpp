#include "automation/webhooks.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/serialize.hpp>
#include <boost/uuid/name_generator_sha1.hpp>
#include <boost/uuid/string_generator.hpp>
#include <boost/uuid/uuid_io.hpp>
#include <future>

#include "automation/signature.hpp"

namespace nightshift {

namespace net = boost::asio;

namespace {

AutomationError invalid(const std::string& message) {
  return AutomationError(AutomationError::Code::invalid_webhook, message);
}

AutomationError not_found(const std::string& id) {
  return AutomationError(AutomationError::Code::webhook_not_found,
                         "no webhook has the id '" + id + "'");
}

bool wants(const Webhook& webhook, const std::string& event, const Run& run) {
  if (webhook.agent_id && *webhook.agent_id != run.agent_id) return false;
  return std::find(webhook.events.begin(), webhook.events.end(), event) != webhook.events.end();
}

// The id of a shared delivery: the same on every host that makes it.
std::string shared_delivery_id(const std::string& webhook_id, const std::string& instance_id,
                               const std::string& event) {
  // A fixed namespace of these ids (any constant UUID; it never changes).
  static const boost::uuids::uuid kNamespace =
      boost::uuids::string_generator()("5d1c7e52-3f0a-4b8e-9c61-2a7f4e9b0d13");
  boost::uuids::name_generator_sha1 make(kNamespace);
  return boost::uuids::to_string(make(webhook_id + '\n' + instance_id + '\n' + event));
}

// How many times a shared store's deliveries are tried to be stored, 5 s
// apart, while it cannot be reached (a database restart takes less).
constexpr int kSharedStoreTries = 24;

}  // namespace

Webhooks::Webhooks(EventBus& bus, AutomationStore& store, WebhookOptions options)
    : store_(store), options_(options), work_(net::make_work_guard(ioc_)) {
  webhooks_ = store_.list_webhooks();
  thread_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "ns-webhooks");
    while (true) {
      try {
        ioc_.run();
        return;
      } catch (const std::exception& error) {
        spdlog::error("webhook delivery failed unexpectedly: {}", error.what());
      }
    }
  });
  // Deliveries a stopped host left pending: sent when their time comes.
  take_over_pending();
  subscription_ = bus.subscribe([this](const EventPtr& event) { on_event(event); });
}

Webhooks::~Webhooks() {
  stop();
}

void Webhooks::stop() {
  subscription_.reset();
  if (thread_.joinable() && !ioc_.stopped()) {
    // Deliveries of the events seen so far are recorded before the thread
    // stops (handlers run in the order they were posted).
    auto recorded = std::make_shared<std::promise<void>>();
    auto done = recorded->get_future();
    net::post(ioc_, [recorded] { recorded->set_value(); });
    done.wait_for(std::chrono::seconds(5));
  }
  work_.reset();
  ioc_.stop();
  if (thread_.joinable()) thread_.join();
  store_thread_.join();  // every record posted so far is written
}

void Webhooks::set_run_json(RunJson run_json) {
  std::vector<Occurrence> waiting;
  {
    std::lock_guard lock(mutex_);
    run_json_ = std::move(run_json);
    waiting.swap(waiting_);
  }
  for (Occurrence& occurrence : waiting) {
    net::post(ioc_, [this, occurrence = std::move(occurrence)] { make_deliveries(occurrence); });
  }
}

Webhook Webhooks::create(const WebhookInput& input) {
  if (auto why = check_webhook_url(input.url)) throw invalid(*why);
  if (input.events.empty()) {
    throw invalid("a webhook needs at least one event: run.started, run.finished or run.failed");
  }
  for (const std::string& event : input.events) {
    if (!is_webhook_event(event)) {
      throw invalid("unknown event '" + event +
                    "'; a webhook may subscribe to run.started, run.finished and run.failed");
    }
  }
  Webhook webhook;
  webhook.id = generate_uuid();
  webhook.url = input.url;
  for (const std::string& event : input.events) {
    if (std::find(webhook.events.begin(), webhook.events.end(), event) == webhook.events.end()) {
      webhook.events.push_back(event);
    }
  }
  webhook.agent_id = input.agent_id;
  if (input.secret && !input.secret->empty()) webhook.secret = input.secret;
  webhook.created_at = now_ms();
  // The store first, outside the lock the bus handler takes: a slow commit
  // never holds up the store writer's thread that publishes run events.
  std::lock_guard change(change_mutex_);
  store_.add_webhook(webhook);
  std::lock_guard lock(mutex_);
  webhooks_.push_back(webhook);
  return webhook;
}

void Webhooks::remove(const std::string& id) {
  std::lock_guard change(change_mutex_);
  {
    std::lock_guard lock(mutex_);
    const auto it = std::find_if(webhooks_.begin(), webhooks_.end(),
                                 [&](const Webhook& webhook) { return webhook.id == id; });
    // A shared store's webhook may come from another host, not yet seen here.
    if (it == webhooks_.end() && !store_.shared()) throw not_found(id);
    if (it != webhooks_.end()) webhooks_.erase(it);  // no new deliveries from now on
  }
  if (!store_.delete_webhook(id) && store_.shared()) throw not_found(id);
}

std::vector<Webhook> Webhooks::list() const {
  if (store_.shared()) return store_.list_webhooks();  // every host's, as they are now
  std::lock_guard lock(mutex_);
  return webhooks_;
}

std::size_t Webhooks::dispatching() const {
  std::lock_guard lock(mutex_);
  return webhooks_.size();
}

void Webhooks::refresh() {
  if (!store_.shared()) return;
  {
    std::lock_guard change(change_mutex_);
    std::vector<Webhook> stored = store_.list_webhooks();
    std::lock_guard lock(mutex_);
    webhooks_ = std::move(stored);
  }
  take_over_pending();
}

void Webhooks::take_over_pending() {
  for (Delivery& delivery : store_.claim_pending_deliveries(hold())) {
    const Timestamp now = now_ms();
    const auto wait =
        delivery.next_attempt_at && *delivery.next_attempt_at > now
            ? std::chrono::duration_cast<std::chrono::milliseconds>(*delivery.next_attempt_at - now)
            : std::chrono::milliseconds(0);
    net::post(ioc_, [this, delivery = std::move(delivery), wait]() mutable {
      retry_later(std::move(delivery), wait);
    });
  }
}

std::chrono::milliseconds Webhooks::hold() const {
  return options_.timeout + std::chrono::seconds(30);
}

std::optional<Webhook> Webhooks::find(const std::string& id) const {
  std::lock_guard lock(mutex_);
  for (const Webhook& webhook : webhooks_) {
    if (webhook.id == id) return webhook;
  }
  return std::nullopt;
}

std::vector<Delivery> Webhooks::deliveries(const std::string& webhook_id, std::size_t limit) const {
  const bool known =
      store_.shared() ? store_.get_webhook(webhook_id).has_value() : find(webhook_id).has_value();
  if (!known) throw not_found(webhook_id);
  return store_.list_deliveries(webhook_id, limit);
}

WebhookStats Webhooks::stats() const {
  return WebhookStats{delivered_.load(), failed_attempts_.load(), failed_.load()};
}

// On the store writer's publisher thread: a quick look at the webhooks, then a post.
void Webhooks::on_event(const EventPtr& event) {
  const auto* run_event = std::get_if<RunEvent>(event.get());
  if (run_event == nullptr) return;
  Occurrence occurrence;
  if (run_event->kind == RunEventKind::started) {
    occurrence.events.emplace_back(kRunStartedEvent);
  } else if (run_event->kind == RunEventKind::finished) {
    occurrence.events.emplace_back(kRunFinishedEvent);
    if (run_event->run.status == RunStatus::failed) occurrence.events.emplace_back(kRunFailedEvent);
  } else {
    return;
  }
  std::lock_guard lock(mutex_);
  const bool any = std::any_of(webhooks_.begin(), webhooks_.end(), [&](const Webhook& webhook) {
    return std::any_of(
        occurrence.events.begin(), occurrence.events.end(),
        [&](const std::string& name) { return wants(webhook, name, run_event->run); });
  });
  if (!any) return;
  occurrence.run = run_event->run;
  if (!run_json_) {
    waiting_.push_back(std::move(occurrence));
    return;
  }
  net::post(ioc_, [this, occurrence = std::move(occurrence)] { make_deliveries(occurrence); });
}

void Webhooks::make_deliveries(const Occurrence& occurrence) {
  std::vector<Webhook> webhooks;
  RunJson run_json;
  {
    std::lock_guard lock(mutex_);
    webhooks = webhooks_;
    run_json = run_json_;
  }
  const boost::json::object run = run_json(occurrence.run);
  const bool shared = store_.shared();
  std::vector<Delivery> made;
  for (const Webhook& webhook : webhooks) {
    for (const std::string& event : occurrence.events) {
      if (!wants(webhook, event, occurrence.run)) continue;
      Delivery delivery;
      delivery.id = shared ? shared_delivery_id(webhook.id, occurrence.run.instance_id, event)
                           : generate_uuid();
      delivery.webhook_id = webhook.id;
      delivery.event = event;
      delivery.instance_id = occurrence.run.instance_id;
      delivery.body = boost::json::serialize(
          boost::json::object{{"type", event}, {"deliveryId", delivery.id}, {"run", run}});
      delivery.created_at = now_ms();
      delivery.next_attempt_at = delivery.created_at;
      made.push_back(std::move(delivery));
    }
  }
  if (shared) {
    net::post(store_thread_, [this, made = std::move(made)]() mutable {
      claim_shared(std::move(made), kSharedStoreTries);
    });
    return;
  }
  net::post(store_thread_, [this, made, instance_id = occurrence.run.instance_id] {
    try {
      store_.add_deliveries(made, hold());
    } catch (const std::exception& error) {
      // Not durable, but still sent: the receiver hears of the run.
      spdlog::error("webhook deliveries for run {} could not be stored: {}", instance_id,
                    error.what());
    }
  });
  for (Delivery& delivery : made) attempt(std::move(delivery));
}

// On the store thread: claimed before the first POST, only the host whose
// insert made a delivery's row attempts it. While the store cannot be
// reached the insert is tried again (every other host is failing too).
void Webhooks::claim_shared(std::vector<Delivery> made, int tries_left) {
  std::vector<Delivery> mine;
  try {
    mine = store_.add_deliveries(made, hold());
  } catch (const std::exception& error) {
    const std::string instance_id = made.empty() ? "" : made.front().instance_id;
    if (--tries_left <= 0 || ioc_.stopped()) {
      spdlog::error("webhook deliveries for run {} could not be stored; given up: {}", instance_id,
                    error.what());
      return;
    }
    spdlog::warn("webhook deliveries for run {} could not be stored (tried again in 5 s): {}",
                 instance_id, error.what());
    auto timer = std::make_shared<net::steady_timer>(ioc_, std::chrono::seconds(5));
    timer->async_wait([this, timer, made = std::move(made),
                       tries_left](const boost::system::error_code& wait_error) mutable {
      if (wait_error) return;
      net::post(store_thread_, [this, made = std::move(made), tries_left]() mutable {
        claim_shared(std::move(made), tries_left);
      });
    });
    return;
  }
  if (mine.empty()) return;
  net::post(ioc_, [this, mine = std::move(mine)]() mutable {
    for (Delivery& delivery : mine) attempt(std::move(delivery));
  });
}

void Webhooks::attempt(Delivery delivery) {
  const auto webhook = find(delivery.webhook_id);
  if (!webhook) return;  // deleted, with its deliveries
  WebhookPost post;
  post.url = webhook->url;
  post.timeout = options_.timeout;
  const std::string timestamp = std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(now_ms().time_since_epoch()).count());
  post.headers = {{"X-Nightshift-Event", delivery.event},
                  {"X-Nightshift-Delivery", delivery.id},
                  {"X-Nightshift-Timestamp", timestamp}};
  if (webhook->secret) {
    post.headers.emplace_back("X-Nightshift-Signature",
                              webhook_signature(*webhook->secret, timestamp, delivery.body));
  }
  post.body = delivery.body;
  post_webhook(ioc_, tls_, std::move(post),
               [this, delivery = std::move(delivery)](WebhookAnswer answer) mutable {
                 on_answer(std::move(delivery), answer);
               });
}

void Webhooks::on_answer(Delivery delivery, const WebhookAnswer& answer) {
  ++delivery.attempts;
  delivery.last_status_code = answer.status_code;
  std::optional<std::chrono::milliseconds> retry_in;
  if (answer.success()) {
    delivery.status = DeliveryStatus::delivered;
    delivery.delivered_at = now_ms();
    delivery.next_attempt_at.reset();
    delivery.last_error.reset();
    delivered_.fetch_add(1, std::memory_order_relaxed);
  } else {
    delivery.last_error = answer.error;
    if (delivery.attempts >= options_.max_attempts) {
      delivery.status = DeliveryStatus::failed;
      delivery.next_attempt_at.reset();
      failed_.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("webhook delivery {} to {} failed after {} attempts: {}", delivery.id,
                   delivery.webhook_id, delivery.attempts, answer.error.value_or(""));
    } else {
      retry_in = options_.first_backoff *
                 (std::int64_t{1} << std::min<std::uint32_t>(delivery.attempts - 1, 20));
      delivery.next_attempt_at = now_ms() + *retry_in;
      failed_attempts_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  net::post(store_thread_, [this, delivery] {
    try {
      store_.update_delivery(delivery, options_.deliveries_kept, hold());
    } catch (const std::exception& error) {
      spdlog::error("webhook delivery {} could not be recorded: {}", delivery.id, error.what());
    }
  });
  if (retry_in) retry_later(std::move(delivery), *retry_in);
}

void Webhooks::retry_later(Delivery delivery, std::chrono::milliseconds wait) {
  if (wait.count() <= 0) return attempt(std::move(delivery));
  auto timer = std::make_shared<net::steady_timer>(ioc_, wait);
  timer->async_wait([this, timer, delivery = std::move(delivery)](
                        const boost::system::error_code& error) mutable {
    if (!error) attempt(std::move(delivery));
  });
}

}  // namespace nightshift
