// installed:sleep. Runs for `seconds`, logging "tick i/N" and reporting
// progress i/N as each tick ends; a stop ends it at once. With `failWith`
// set it fails with that message at the end; otherwise its result is
// {"slept": seconds}.
//
// Ticks: N = ceil(seconds). Tick i ends i seconds after the start, except
// the last, which ends at `seconds`: 2.5 ticks at 1 s, 2 s and 2.5 s, and
// 0.3 ticks once, at 0.3 s. Tick ends are measured from the start, so the
// run does not drift by the time spent logging.
#include <boost/json/src.hpp>  // Boost.JSON compiled into this plugin (header-only mode)
#include <chrono>
#include <cmath>
#include <nightshift/agent.hpp>
#include <string>

namespace {

using Seconds = std::chrono::duration<double>;

struct SleepParams {
  boost::json::value seconds_json = 5;  // as given, for the result
  double seconds = 5;
  std::string fail_with;  // empty: do not fail
};

// The longest sleep accepted: a year. Past that the tick count stops being
// meaningful and the deadline arithmetic would risk overflow.
constexpr double max_seconds = 365.0 * 24 * 60 * 60;

// Parses on the stack as far as the params fit (past that, on the heap). A
// run's thread keeps what malloc cached for it while it sleeps: the memory
// the parser allocated and freed on it stayed out of use for the whole sleep
// (about 1.3 MiB of 10,000 sleeping runs in nightshift-bench-engine; with
// half these buffers the parser went to the heap again). The parser's stack
// and the value need no more for the params this agent reads.
//
// Never inlined: inlined, its 1.5 KiB of buffers stayed in run()'s frame
// for the whole run, so every tick's calls went that much deeper into the
// stack, and a sleeping run's thread kept a third stack page resident (or
// gave it back and faulted it in again at every tick) as soon as the host's
// frames grew by a few hundred bytes. Called, its frame is gone before the
// first sleep, which gives back the pages it touched.
[[gnu::noinline]] SleepParams parse_params(const std::string& params_json) {
  unsigned char parser_stack[512];
  unsigned char value_buffer[1024];
  boost::json::monotonic_resource value_memory(value_buffer, sizeof value_buffer);
  boost::json::parser parser(boost::json::storage_ptr(), {}, parser_stack, sizeof parser_stack);
  parser.reset(&value_memory);
  boost::system::error_code error;
  parser.write(params_json, error);
  const boost::json::value params = error ? boost::json::value() : parser.release();
  if (error || !params.is_object()) {
    throw std::invalid_argument("sleep: the params are not a JSON object");
  }
  SleepParams parsed;
  const boost::json::object& object = params.as_object();
  if (const auto* seconds = object.if_contains("seconds"); seconds && !seconds->is_null()) {
    if (!seconds->is_number()) throw std::invalid_argument("sleep: seconds must be a number");
    parsed.seconds = seconds->to_number<double>();
    parsed.seconds_json = boost::json::value(*seconds, boost::json::storage_ptr());
  }
  if (!(parsed.seconds >= 0 && parsed.seconds <= max_seconds)) {
    throw std::invalid_argument("sleep: seconds must be between 0 and " +
                                std::to_string(static_cast<long long>(max_seconds)));
  }
  if (const auto* fail_with = object.if_contains("failWith"); fail_with && !fail_with->is_null()) {
    if (!fail_with->is_string()) throw std::invalid_argument("sleep: failWith must be a string");
    parsed.fail_with = std::string(fail_with->as_string());
  }
  return parsed;
}

class Sleep : public nightshift::Agent {
 public:
  void run(nightshift::RunContext& ctx) override {
    const SleepParams params = parse_params(ctx.params_json());
    const auto ticks = static_cast<long long>(std::ceil(params.seconds));
    const auto start = std::chrono::steady_clock::now();

    for (long long tick = 1; tick <= ticks; ++tick) {
      const Seconds tick_end(std::min(static_cast<double>(tick), params.seconds));
      if (!ctx.sleep_for(start + tick_end - std::chrono::steady_clock::now())) {
        ctx.info("stopped after " + std::to_string(tick - 1) + "/" + std::to_string(ticks) +
                 " ticks");
        return;
      }
      ctx.info("tick " + std::to_string(tick) + "/" + std::to_string(ticks));
      ctx.progress(static_cast<double>(tick) / static_cast<double>(ticks));
    }

    if (!params.fail_with.empty()) ctx.fail(params.fail_with);
    boost::json::object result;
    result["slept"] = params.seconds_json;
    ctx.set_result_json(boost::json::serialize(result));
  }
};

}  // namespace

NIGHTSHIFT_AGENT(Sleep)
