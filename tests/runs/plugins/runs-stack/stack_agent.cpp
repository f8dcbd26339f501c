// Test agent: goes `useKib` KiB deep into its stack, in frames of 64 KiB
// each written through, then logs "stack <N> KiB": the size of the stack its
// thread was given (pthread_getattr_np).
#include <pthread.h>

#include <boost/json/src.hpp>  // Boost.JSON compiled into this plugin
#include <cstdint>
#include <nightshift/agent.hpp>
#include <string>

namespace {

constexpr std::int64_t kFrameKib = 64;

// Each call holds one 64 KiB frame; the volatile writes keep it real.
[[gnu::noinline]] std::uint64_t go_deeper(std::int64_t frames) {
  volatile unsigned char frame[kFrameKib * 1024];
  for (std::size_t i = 0; i < sizeof frame; i += 512) frame[i] = static_cast<unsigned char>(i);
  const std::uint64_t below = frames > 1 ? go_deeper(frames - 1) : 0;
  return below + frame[sizeof frame - 512];
}

std::size_t stack_kib() {
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return 0;
  std::size_t bytes = 0;
  pthread_attr_getstacksize(&attr, &bytes);
  pthread_attr_destroy(&attr);
  return bytes / 1024;
}

class Stack : public nightshift::Agent {
 public:
  void run(nightshift::RunContext& ctx) override {
    const boost::json::value params = boost::json::parse(ctx.params_json());
    const std::int64_t use_kib = params.at("useKib").to_number<std::int64_t>();
    if (use_kib >= kFrameKib) go_deeper(use_kib / kFrameKib);
    ctx.info("stack " + std::to_string(stack_kib()) + " KiB");
  }
};

}  // namespace

NIGHTSHIFT_AGENT(Stack)
