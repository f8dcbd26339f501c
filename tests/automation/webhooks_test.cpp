// Webhooks on a real Host against real HTTP receivers on 127.0.0.1: the
// payload, headers and HMAC-SHA256 signature, retries with backoff (a
// receiver that fails twice), a receiver that never answers (and does not
// hold up another), deliveries left pending across a restart, and https
// receivers checked against the system's CA certificates.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <set>

#include "automation_fixture.hpp"
#include "receiver.hpp"
#include "scripted_model_server.hpp"

namespace nightshift {
namespace {

using namespace std::chrono_literals;
using testing::AutomationHost;
using testing::Receiver;
using testing::ScriptedAnswer;
using testing::ScriptedModelServer;
using testing::TestCertificate;
using testing::wait_until;

// The signature computed here from the documented recipe, independently of
// the host's code.
std::string expected_signature(const std::string& secret, const std::string& timestamp,
                               const std::string& body) {
  const std::string message = timestamp + "." + body;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  std::string hex;
  char byte[3];
  for (unsigned int i = 0; i < length; ++i) {
    std::snprintf(byte, sizeof byte, "%02x", digest[i]);
    hex += byte;
  }
  return "sha256=" + hex;
}

AutomationOptions fast_retries(std::chrono::milliseconds timeout = 2s,
                               std::uint32_t max_attempts = 6) {
  AutomationOptions options;
  options.webhooks.first_backoff = 100ms;
  options.webhooks.timeout = timeout;
  options.webhooks.max_attempts = max_attempts;
  return options;
}

WebhookInput hook(const std::string& url, std::vector<std::string> events,
                  std::optional<std::string> secret = std::nullopt) {
  WebhookInput in;
  in.url = url;
  in.events = std::move(events);
  in.secret = std::move(secret);
  return in;
}

std::optional<Delivery> only_delivery(AutomationHost& fixture, const std::string& webhook_id) {
  const auto deliveries = fixture.automation().webhooks().deliveries(webhook_id, 100);
  if (deliveries.size() != 1) return std::nullopt;
  return deliveries.front();
}

TEST(WebhooksTest, DeliversSignedEventsThatTheReceiverCanVerify) {
  Receiver receiver;
  AutomationHost fixture;
  fixture.open(fast_retries());
  const Webhook webhook = fixture.automation().webhooks().create(
      hook(receiver.url(), {"run.started", "run.finished", "run.failed"}, "s3cret"));
  const nightshift::Run failed =
      fixture.finish(fixture.start("installed:sleep", {{"seconds", 0}, {"failWith", "boom"}}));
  ASSERT_EQ(failed.status, RunStatus::failed);
  ASSERT_TRUE(wait_until([&] { return receiver.count() == 3; }));

  std::set<std::string> types;
  for (const Receiver::Request& request : receiver.requests()) {
    const boost::json::object body = boost::json::parse(request.body).as_object();
    const std::string type(body.at("type").as_string());
    types.insert(type);
    EXPECT_EQ(request.headers.at("content-type"), "application/json");
    EXPECT_EQ(request.headers.at("x-nightshift-event"), type);
    EXPECT_EQ(request.headers.at("x-nightshift-delivery"),
              std::string(body.at("deliveryId").as_string()));
    const std::string timestamp = request.headers.at("x-nightshift-timestamp");
    const auto seconds = std::stoll(timestamp);
    EXPECT_NEAR(
        static_cast<double>(seconds),
        static_cast<double>(
            std::chrono::duration_cast<std::chrono::seconds>(now_ms().time_since_epoch()).count()),
        60.0);
    EXPECT_EQ(request.headers.at("x-nightshift-signature"),
              expected_signature("s3cret", timestamp, request.body));
    EXPECT_NE(request.headers.at("x-nightshift-signature"),
              expected_signature("wrong", timestamp, request.body));
    const boost::json::object& run = body.at("run").as_object();
    EXPECT_EQ(std::string(run.at("instanceId").as_string()), failed.instance_id);
    EXPECT_TRUE(run.contains("attempt") && run.contains("durationMs")) << "the API's Run object";
    if (type != "run.started") {
      EXPECT_EQ(run.at("status"), "failed");
    }
  }
  EXPECT_EQ(types, (std::set<std::string>{"run.started", "run.finished", "run.failed"}));
  ASSERT_TRUE(wait_until([&] {
    const auto deliveries = fixture.automation().webhooks().deliveries(webhook.id, 100);
    return deliveries.size() == 3 &&
           std::all_of(deliveries.begin(), deliveries.end(), [](const Delivery& d) {
             return d.status == DeliveryStatus::delivered && d.attempts == 1 &&
                    d.last_status_code == 200 && d.delivered_at;
           });
  }));
  // The secret is stored, never shown.
  for (const Webhook& listed : fixture.automation().webhooks().list()) {
    EXPECT_EQ(listed.id, webhook.id);
  }
}

TEST(WebhooksTest, UnsignedWhenThereIsNoSecretAndFilteredByAgent) {
  Receiver receiver;
  AutomationHost fixture;
  fixture.open(fast_retries());
  const Webhook all =
      fixture.automation().webhooks().create(hook(receiver.url("/all"), {"run.finished"}));
  WebhookInput only_sleep = hook(receiver.url("/sleep"), {"run.finished"});
  only_sleep.agent_id = "installed:sleep";
  const Webhook sleeps = fixture.automation().webhooks().create(only_sleep);
  fixture.finish(fixture.start("installed:echo"));
  ASSERT_TRUE(wait_until([&] { return only_delivery(fixture, all.id).has_value(); }));
  EXPECT_TRUE(fixture.automation().webhooks().deliveries(sleeps.id, 100).empty());
  ASSERT_TRUE(wait_until([&] { return receiver.count() == 1; }));
  EXPECT_EQ(receiver.requests().front().headers.count("x-nightshift-signature"), 0u);
}

TEST(WebhooksTest, RefusesABadUrlOrAnUnknownEvent) {
  AutomationHost fixture;
  fixture.open();
  EXPECT_THROW(
      fixture.automation().webhooks().create(hook("ftp://example.com/x", {"run.finished"})),
      AutomationError);
  EXPECT_THROW(fixture.automation().webhooks().create(hook("not a url", {"run.finished"})),
               AutomationError);
  EXPECT_THROW(fixture.automation().webhooks().create(hook("http://127.0.0.1:1/x", {"run.done"})),
               AutomationError);
  EXPECT_THROW(fixture.automation().webhooks().deliveries(generate_uuid(), 10), AutomationError);
}

TEST(WebhooksTest, AReceiverThatFailsTwiceGetsTheDeliveryOnTheThirdAttempt) {
  Receiver receiver({500, 503, 200});
  AutomationHost fixture;
  fixture.open(fast_retries());
  const Webhook webhook =
      fixture.automation().webhooks().create(hook(receiver.url(), {"run.finished"}, "k"));
  fixture.finish(fixture.start("installed:echo"));
  ASSERT_TRUE(wait_until([&] {
    const auto delivery = only_delivery(fixture, webhook.id);
    return delivery && delivery->status == DeliveryStatus::delivered;
  }));
  const Delivery delivery = *only_delivery(fixture, webhook.id);
  EXPECT_EQ(delivery.attempts, 3u);
  EXPECT_EQ(delivery.last_status_code, 200);
  const auto requests = receiver.requests();
  ASSERT_EQ(requests.size(), 3u);
  // The same delivery each time: same id, same body.
  EXPECT_EQ(requests[0].headers.at("x-nightshift-delivery"), delivery.id);
  EXPECT_EQ(requests[2].headers.at("x-nightshift-delivery"), delivery.id);
  EXPECT_EQ(requests[0].body, requests[2].body);
  const WebhookStats stats = fixture.automation().stats().webhooks;
  EXPECT_EQ(stats.delivered, 1u);
  EXPECT_EQ(stats.failed_attempts, 2u);
}

TEST(WebhooksTest, AReceiverThatNeverAnswersFailsWithoutHoldingUpOthers) {
  Receiver silent({0});
  Receiver healthy;
  AutomationHost fixture;
  fixture.open(fast_retries(1500ms, 2));
  const Webhook dead = fixture.automation().webhooks().create(hook(silent.url(), {"run.finished"}));
  const Webhook alive =
      fixture.automation().webhooks().create(hook(healthy.url(), {"run.finished"}));
  const nightshift::Run run = fixture.finish(fixture.start("installed:echo"));
  EXPECT_EQ(run.status, RunStatus::completed) << "the run is not held up";
  ASSERT_TRUE(wait_until([&] {
    const auto delivery = only_delivery(fixture, alive.id);
    return delivery && delivery->status == DeliveryStatus::delivered;
  }));
  // The silent receiver's first attempt is still waiting for its answer.
  const auto pending = only_delivery(fixture, dead.id);
  ASSERT_TRUE(pending);
  EXPECT_EQ(pending->status, DeliveryStatus::pending);
  EXPECT_EQ(pending->attempts, 0u);
  ASSERT_TRUE(wait_until(
      [&] {
        const auto delivery = only_delivery(fixture, dead.id);
        return delivery && delivery->status == DeliveryStatus::failed;
      },
      20s));
  const Delivery failed = *only_delivery(fixture, dead.id);
  EXPECT_EQ(failed.attempts, 2u);
  EXPECT_FALSE(failed.last_status_code);
  ASSERT_TRUE(failed.last_error);
  EXPECT_NE(failed.last_error->find("timed out"), std::string::npos) << *failed.last_error;
  EXPECT_EQ(fixture.automation().stats().webhooks.failed, 1u);
}

TEST(WebhooksTest, PendingDeliveriesAreSentAfterARestart) {
  std::uint16_t port = 0;
  {
    Receiver probe;  // finds a free port, then frees it: nothing listens there
    port = probe.port();
  }
  AutomationHost fixture;
  fixture.open(fast_retries(2s, 50));
  const Webhook webhook = fixture.automation().webhooks().create(
      hook("http://127.0.0.1:" + std::to_string(port) + "/hook", {"run.finished"}, "k"));
  const nightshift::Run run = fixture.finish(fixture.start("installed:echo"));
  ASSERT_TRUE(wait_until([&] {
    const auto delivery = only_delivery(fixture, webhook.id);
    return delivery && delivery->attempts >= 1;
  }));
  EXPECT_EQ(only_delivery(fixture, webhook.id)->status, DeliveryStatus::pending);
  EXPECT_TRUE(only_delivery(fixture, webhook.id)->last_error);
  fixture.close();

  Receiver receiver({200}, port);
  fixture.open(fast_retries(2s, 50));
  ASSERT_TRUE(wait_until(
      [&] {
        const auto delivery = only_delivery(fixture, webhook.id);
        return delivery && delivery->status == DeliveryStatus::delivered;
      },
      20s));
  ASSERT_GE(receiver.count(), 1u);
  const boost::json::object body = boost::json::parse(receiver.requests().back().body).as_object();
  EXPECT_EQ(std::string(body.at("run").at("instanceId").as_string()), run.instance_id);
}

// The TLS context is made on the first https POST, from the system's CA
// certificates as they are then: here a test certificate named by
// SSL_CERT_FILE only after the host started. A receiver whose certificate
// they do not vouch for is not sent the event.
TEST(WebhooksTest, HttpsReceiversAreCheckedAgainstTheSystemsCertificatesOfTheFirstPost) {
  const TestCertificate trusted_certificate = TestCertificate::make();
  ScriptedModelServer trusted(trusted_certificate);
  trusted.set_responder([](const auto&) { return ScriptedAnswer::json("{}"); });
  ScriptedModelServer untrusted(TestCertificate::make());
  untrusted.set_responder([](const auto&) { return ScriptedAnswer::json("{}"); });
  AutomationHost fixture;
  fixture.open(fast_retries(2s, 1));

  testing::TempDir certificates;
  testing::write_file(certificates / "ca.pem", trusted_certificate.certificate_pem);
  ::setenv("SSL_CERT_FILE", (certificates / "ca.pem").c_str(), 1);
  const Webhook accepted = fixture.automation().webhooks().create(
      hook(trusted.base_url() + "/hook", {"run.finished"}));
  const Webhook refused = fixture.automation().webhooks().create(
      hook(untrusted.base_url() + "/hook", {"run.finished"}));
  fixture.finish(fixture.start("installed:echo"));
  const bool settled = wait_until([&] {
    const auto sent = only_delivery(fixture, accepted.id);
    const auto not_sent = only_delivery(fixture, refused.id);
    return sent && sent->status != DeliveryStatus::pending && not_sent &&
           not_sent->status != DeliveryStatus::pending;
  });
  ::unsetenv("SSL_CERT_FILE");
  ASSERT_TRUE(settled);

  const Delivery sent = *only_delivery(fixture, accepted.id);
  EXPECT_EQ(sent.status, DeliveryStatus::delivered) << sent.last_error.value_or("");
  EXPECT_EQ(sent.last_status_code, 200);
  ASSERT_EQ(trusted.requests().size(), 1u);
  EXPECT_EQ(trusted.requests().front().target, "/v1/hook");

  const Delivery not_sent = *only_delivery(fixture, refused.id);
  EXPECT_EQ(not_sent.status, DeliveryStatus::failed);
  EXPECT_FALSE(not_sent.last_status_code);
  ASSERT_TRUE(not_sent.last_error);
  EXPECT_NE(not_sent.last_error->find("TLS handshake failed"), std::string::npos)
      << *not_sent.last_error;
  EXPECT_NE(not_sent.last_error->find("certificate"), std::string::npos) << *not_sent.last_error;
  EXPECT_TRUE(untrusted.requests().empty());
}

}  // namespace
}  // namespace nightshift
