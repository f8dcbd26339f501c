#include "cli/automation_commands.hpp"

#include <unistd.h>

#include <boost/beast/http/verb.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/url.hpp>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <memory>

#include "cli/api_client.hpp"
#include "cli/command_plumbing.hpp"
#include "cli/exit_codes.hpp"
#include "cli/format.hpp"
#include "cli/host_endpoint.hpp"
#include "cli/params.hpp"
#include "cli/resolve.hpp"

namespace nightshift::cli {
namespace json = boost::json;
using boost::beast::http::verb;

namespace {

struct Common {
  HostOptions host;
  bool json = false;
};

template <class Options>
CLI::App* command(CLI::App& parent, const std::string& name, const std::string& description,
                  int& exit_code, std::shared_ptr<Options> options,
                  std::function<int(Options&)> body, bool with_json = true) {
  auto* sub = parent.add_subcommand(name, description);
  sub->footer(exit_code_help());
  sub->callback([&exit_code, options, body = std::move(body)] {
    exit_code = run_guarded([&] { return body(*options); });
  });
  add_host_options(*sub, options->host);
  if (with_json) add_json_flag(*sub, options->json);
  return sub;
}

std::string path_of(std::initializer_list<std::string_view> segments) {
  boost::urls::url url;
  url.set_path_absolute(true);
  for (std::string_view segment : segments) url.segments().push_back(segment);
  return std::string(url.encoded_path());
}

bool colour() {
  return colour_enabled(STDOUT_FILENO);
}

// In this terminal's zone, named: a schedule's own zone is beside it.
std::string when(const json::object& object, std::string_view key) {
  const auto time = parse_timestamp(string_member(object, key));
  return time ? format_local_zoned(*time) : "-";
}

// A full id, or a unique prefix of one of `items`' ids.
std::string resolve_id(const json::array& items, const std::string& id_or_prefix,
                       const std::string& what) {
  std::string found;
  for (const json::value& item : items) {
    const std::string id = string_member(item.as_object(), "id");
    if (id == id_or_prefix) return id;
    if (id.rfind(id_or_prefix, 0) == 0) {
      if (!found.empty()) {
        throw CliError(ExitCode::usage, "'" + id_or_prefix + "' matches more than one " + what +
                                            "; give more of its id");
      }
      found = id;
    }
  }
  if (found.empty())
    throw CliError(ExitCode::error, "no " + what + " has an id starting '" + id_or_prefix + "'");
  return found;
}

// One column of ids, each cut to the shortest prefix (`minimum` characters
// at least) at which the column's ids all differ, as `nightshift ps` shows
// run ids: ids made moments apart begin alike (they begin with the time).
std::vector<std::string> id_column(const json::array& items, const char* member,
                                   std::size_t minimum = 8) {
  std::vector<std::string> ids;
  std::vector<std::string> present;
  for (const json::value& item : items) {
    ids.push_back(string_member(item.as_object(), member));
    if (!ids.back().empty()) present.push_back(ids.back());
  }
  const std::size_t length = unique_prefix_length(present, minimum);
  for (std::string& id : ids) id = id.substr(0, length);
  return ids;
}

// A column of run ids holds a few of the host's runs, not all of them, so
// it shows at least the creation time to the millisecond and 12 random bits
// ("01a23c1f-4cc0-7643"): a prefix that other runs are most unlikely to
// share, to type to `nightshift logs` or `show`.
constexpr std::size_t kRunIdColumn = 18;

json::array list_of(ApiClient& api, const char* path, const char* member) {
  auto answer = api.request(verb::get, path);
  if (!answer.is_object() || !answer.as_object().contains(member) ||
      !answer.as_object().at(member).is_array()) {
    throw CliError(ExitCode::error, std::string("the host's answer has no '") + member + "' list");
  }
  return std::move(answer.as_object().at(member).as_array());
}

// ---- rerun ------------------------------------------------------------------

struct RerunOptions : Common {
  std::string id;
};

int rerun_command(RerunOptions& options) {
  ApiClient api(resolve_endpoint(options.host));
  const std::string id = resolve_run_id(api, options.id);
  const auto run = api.request(verb::post, path_of({"background-agents", id, "rerun"}));
  if (options.json) {
    std::cout << json::serialize(run) << '\n';
  } else {
    std::cout << string_member(run.as_object(), "instanceId") << '\n';
  }
  return 0;
}

// ---- schedule ----------------------------------------------------------------

struct ScheduleAddOptions : Common {
  std::string agent;
  std::string cron;
  std::string task;
  std::vector<std::string> params;
  std::string timezone;
  std::string overlap;
  bool disabled = false;
};

struct ScheduleIdOptions : Common {
  std::string id;
};

void print_schedule_line(const json::object& schedule) {
  std::cout << string_member(schedule, "id") << "  next: " << when(schedule, "nextRunAt") << '\n';
}

int schedule_add_command(ScheduleAddOptions& options) {
  ApiClient api(resolve_endpoint(options.host));
  json::object body{{"agentId", resolve_agent_id(api, options.agent)},
                    {"cron", options.cron},
                    {"params", parse_params(options.params)}};
  if (!options.task.empty()) body["task"] = options.task;
  if (!options.timezone.empty()) body["timezone"] = options.timezone;
  if (!options.overlap.empty()) body["overlap"] = options.overlap;
  if (options.disabled) body["enabled"] = false;
  const auto schedule = api.request(verb::post, "/schedules", json::serialize(body));
  if (options.json) {
    std::cout << json::serialize(schedule) << '\n';
  } else {
    print_schedule_line(schedule.as_object());
  }
  return 0;
}

int schedule_ls_command(Common& options) {
  ApiClient api(resolve_endpoint(options.host));
  const json::array schedules = list_of(api, "/schedules", "schedules");
  if (options.json) {
    std::cout << json::serialize(json::object{{"schedules", schedules}}) << '\n';
    return 0;
  }
  if (schedules.empty()) {
    std::cout << "no schedules; add one with `nightshift schedule add AGENT CRON`\n";
    return 0;
  }
  Table table({"ID", "AGENT", "CRON", "TIMEZONE", "ENABLED", "OVERLAP", "NEXT RUN", "LAST RUN"});
  const std::vector<std::string> ids = id_column(schedules, "id");
  const std::vector<std::string> last_runs = id_column(schedules, "lastRunId", kRunIdColumn);
  for (std::size_t i = 0; i < schedules.size(); ++i) {
    const json::object& s = schedules[i].as_object();
    const bool enabled =
        s.if_contains("enabled") && s.at("enabled").is_bool() && s.at("enabled").get_bool();
    table.add_row({{ids[i]},
                   {string_member(s, "agentId")},
                   {string_member(s, "cron")},
                   {string_member(s, "timezone")},
                   {enabled ? "yes" : "no", enabled ? Style::green : Style::dim},
                   {string_member(s, "overlap")},
                   {when(s, "nextRunAt")},
                   {last_runs[i]}});
  }
  table.print(std::cout, colour());
  return 0;
}

std::string resolve_schedule(ApiClient& api, const std::string& id) {
  return resolve_id(list_of(api, "/schedules", "schedules"), id, "schedule");
}

int schedule_rm_command(ScheduleIdOptions& options) {
  ApiClient api(resolve_endpoint(options.host));
  const std::string id = resolve_schedule(api, options.id);
  api.request(verb::delete_, path_of({"schedules", id}));
  std::cout << "removed schedule " << id << '\n';
  return 0;
}

int schedule_enable(ScheduleIdOptions& options, bool enabled) {
  ApiClient api(resolve_endpoint(options.host));
  const std::string id = resolve_schedule(api, options.id);
  const auto schedule = api.request(verb::patch, path_of({"schedules", id}),
                                    json::serialize(json::object{{"enabled", enabled}}));
  if (options.json) {
    std::cout << json::serialize(schedule) << '\n';
  } else {
    std::cout << id << (enabled ? " enabled" : " disabled");
    if (enabled) std::cout << ", next: " << when(schedule.as_object(), "nextRunAt");
    std::cout << '\n';
  }
  return 0;
}

int schedule_trigger_command(ScheduleIdOptions& options) {
  ApiClient api(resolve_endpoint(options.host));
  const std::string id = resolve_schedule(api, options.id);
  const auto run = api.request(verb::post, path_of({"schedules", id, "trigger"}));
  if (options.json) {
    std::cout << json::serialize(run) << '\n';
  } else {
    std::cout << string_member(run.as_object(), "instanceId") << '\n';
  }
  return 0;
}

void add_schedule(CLI::App& app, int& exit_code) {
  auto* schedule = app.add_subcommand("schedule", "Start runs on a cron schedule");
  schedule->require_subcommand(1);

  auto add = std::make_shared<ScheduleAddOptions>();
  auto* add_command = command<ScheduleAddOptions>(
      *schedule, "add", "Add a schedule and print its id and next run time", exit_code, add,
      schedule_add_command);
  add_command->add_option("AGENT", add->agent, "agent id (installed:echo) or unambiguous name")
      ->required();
  add_command
      ->add_option("CRON", add->cron,
                   "five fields (minute hour day-of-month month day-of-week, e.g. \"0 3 * * *\") "
                   "or @hourly, @daily, @weekly, @monthly")
      ->required();
  add_command->add_option("--task", add->task, "the task of each run");
  add_command->add_option("--param,-p", add->params,
                          "KEY=VALUE, repeatable; VALUE is JSON when it parses as JSON");
  add_command->add_option("--timezone,--tz", add->timezone,
                          "IANA time zone of the cron times (default UTC), e.g. Europe/Berlin");
  add_command
      ->add_option("--overlap", add->overlap,
                   "while the previous run is active: skip (default) or queue")
      ->check(CLI::IsMember({"skip", "queue"}));
  add_command->add_flag("--disabled", add->disabled, "add it disabled");

  auto ls = std::make_shared<Common>();
  command<Common>(*schedule, "ls", "List schedules with their next run times", exit_code, ls,
                  schedule_ls_command);

  const auto id_command = [&](const std::string& name, const std::string& description,
                              std::function<int(ScheduleIdOptions&)> body, bool json) {
    auto options = std::make_shared<ScheduleIdOptions>();
    auto* sub = command<ScheduleIdOptions>(*schedule, name, description, exit_code, options,
                                           std::move(body), json);
    sub->add_option("ID", options->id, "schedule id, or a unique prefix of one")->required();
  };
  id_command("rm", "Remove a schedule", schedule_rm_command, false);
  id_command(
      "enable", "Enable a schedule", [](ScheduleIdOptions& o) { return schedule_enable(o, true); },
      true);
  id_command(
      "disable", "Disable a schedule (it starts nothing until enabled)",
      [](ScheduleIdOptions& o) { return schedule_enable(o, false); }, true);
  id_command("trigger", "Start a run of a schedule now and print its instanceId",
             schedule_trigger_command, true);
}

// ---- webhook -------------------------------------------------------------------

struct WebhookAddOptions : Common {
  std::string url;
  std::vector<std::string> events;
  std::string agent;
  std::string secret_file;
};

struct WebhookIdOptions : Common {
  std::string id;
};

std::string read_secret(const std::string& path) {
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw CliError(ExitCode::usage, "cannot read the secret file " + path);
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.empty()) throw CliError(ExitCode::usage, "the secret in " + path + " is empty");
  return text;
}

int webhook_add_command(WebhookAddOptions& options) {
  ApiClient api(resolve_endpoint(options.host));
  json::object body{{"url", options.url}};
  if (!options.events.empty()) {
    json::array events;
    for (const std::string& event : options.events) events.emplace_back(event);
    body["events"] = std::move(events);
  }
  if (!options.agent.empty()) body["agentId"] = resolve_agent_id(api, options.agent);
  if (!options.secret_file.empty()) {
    body["secret"] = read_secret(options.secret_file);
  } else if (const char* secret = std::getenv("NIGHTSHIFT_WEBHOOK_SECRET"); secret && *secret) {
    body["secret"] = secret;
  }
  const auto webhook = api.request(verb::post, "/webhooks", json::serialize(body));
  if (options.json) {
    std::cout << json::serialize(webhook) << '\n';
  } else {
    std::cout << string_member(webhook.as_object(), "id") << '\n';
  }
  return 0;
}

int webhook_ls_command(Common& options) {
  ApiClient api(resolve_endpoint(options.host));
  const json::array webhooks = list_of(api, "/webhooks", "webhooks");
  if (options.json) {
    std::cout << json::serialize(json::object{{"webhooks", webhooks}}) << '\n';
    return 0;
  }
  if (webhooks.empty()) {
    std::cout << "no webhooks; add one with `nightshift webhook add URL`\n";
    return 0;
  }
  Table table({"ID", "URL", "EVENTS", "AGENT", "CREATED"});
  const std::vector<std::string> ids = id_column(webhooks, "id");
  for (std::size_t i = 0; i < webhooks.size(); ++i) {
    const json::object& w = webhooks[i].as_object();
    std::string events;
    if (const auto* list = w.if_contains("events"); list && list->is_array()) {
      for (const json::value& event : list->get_array()) {
        if (!events.empty()) events += ",";
        if (event.is_string()) events += std::string(event.get_string());
      }
    }
    const std::string agent = string_member(w, "agentId");
    table.add_row({{ids[i]},
                   {string_member(w, "url")},
                   {events},
                   {agent.empty() ? "(all)" : agent},
                   {when(w, "createdAt")}});
  }
  table.print(std::cout, colour());
  return 0;
}

std::string resolve_webhook(ApiClient& api, const std::string& id) {
  return resolve_id(list_of(api, "/webhooks", "webhooks"), id, "webhook");
}

int webhook_rm_command(WebhookIdOptions& options) {
  ApiClient api(resolve_endpoint(options.host));
  const std::string id = resolve_webhook(api, options.id);
  api.request(verb::delete_, path_of({"webhooks", id}));
  std::cout << "removed webhook " << id << '\n';
  return 0;
}

Style delivery_style(const std::string& status) {
  if (status == "delivered") return Style::green;
  if (status == "failed") return Style::red;
  return Style::yellow;
}

int webhook_deliveries_command(WebhookIdOptions& options) {
  ApiClient api(resolve_endpoint(options.host));
  const std::string id = resolve_webhook(api, options.id);
  auto answer = api.request(verb::get, path_of({"webhooks", id, "deliveries"}));
  if (options.json) {
    std::cout << json::serialize(answer) << '\n';
    return 0;
  }
  const auto* deliveries =
      answer.is_object() ? answer.as_object().if_contains("deliveries") : nullptr;
  if (deliveries == nullptr || !deliveries->is_array() || deliveries->get_array().empty()) {
    std::cout << "no deliveries yet\n";
    return 0;
  }
  Table table({"DELIVERY", "EVENT", "RUN", "STATUS", "ATTEMPTS", "CODE", "CREATED", "LAST ERROR"});
  const json::array& list = deliveries->get_array();
  const std::vector<std::string> ids = id_column(list, "id");
  const std::vector<std::string> runs = id_column(list, "instanceId", kRunIdColumn);
  for (std::size_t i = 0; i < list.size(); ++i) {
    const json::object& d = list[i].as_object();
    const std::string status = string_member(d, "status");
    const std::string code = string_member(d, "lastStatusCode");
    table.add_row({{ids[i]},
                   {string_member(d, "event")},
                   {runs[i]},
                   {status, delivery_style(status)},
                   {std::to_string(int_member(d, "attempts"))},
                   {code.empty() ? "-" : code},
                   {when(d, "createdAt")},
                   {truncate_text(string_member(d, "lastError"), 60)}});
  }
  table.print(std::cout, colour());
  return 0;
}

void add_webhook(CLI::App& app, int& exit_code) {
  auto* webhook = app.add_subcommand("webhook", "POST run events to URLs, signed with a secret");
  webhook->require_subcommand(1);

  auto add = std::make_shared<WebhookAddOptions>();
  auto* add_command = command<WebhookAddOptions>(
      *webhook, "add",
      "Add a webhook and print its id; the secret comes from --secret-file or "
      "NIGHTSHIFT_WEBHOOK_SECRET (never from the command line, where others could read it)",
      exit_code, add, webhook_add_command);
  add_command->add_option("URL", add->url, "http:// or https:// URL to POST to")->required();
  add_command
      ->add_option("--event", add->events,
                   "run.started, run.finished (default) or run.failed; repeatable")
      ->check(CLI::IsMember({"run.started", "run.finished", "run.failed"}));
  add_command->add_option("--agent", add->agent, "only runs of this agent (default: all)");
  add_command->add_option("--secret-file", add->secret_file,
                          "file holding the signing secret ('-': stdin)");

  auto ls = std::make_shared<Common>();
  command<Common>(*webhook, "ls", "List webhooks (their secrets are never shown)", exit_code, ls,
                  webhook_ls_command);

  auto rm = std::make_shared<WebhookIdOptions>();
  command<WebhookIdOptions>(*webhook, "rm", "Remove a webhook and its deliveries", exit_code, rm,
                            webhook_rm_command, false)
      ->add_option("ID", rm->id, "webhook id, or a unique prefix of one")
      ->required();

  auto deliveries = std::make_shared<WebhookIdOptions>();
  command<WebhookIdOptions>(*webhook, "deliveries",
                            "Show a webhook's recent deliveries with their attempts and last error",
                            exit_code, deliveries, webhook_deliveries_command)
      ->add_option("ID", deliveries->id, "webhook id, or a unique prefix of one")
      ->required();
}

void add_rerun(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<RerunOptions>();
  command<RerunOptions>(app, "rerun",
                        "Start a finished run again (same agent, task and params) and print the "
                        "new instanceId",
                        exit_code, options, rerun_command)
      ->add_option("ID", options->id, "run id, or a unique prefix of one")
      ->required();
}

}  // namespace

void add_automation_commands(CLI::App& app, int& exit_code) {
  add_rerun(app, exit_code);
  add_schedule(app, exit_code);
  add_webhook(app, exit_code);
}

}  // namespace nightshift::cli
