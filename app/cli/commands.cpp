#include "cli/commands.hpp"

#include <unistd.h>

#include <boost/json/serialize.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <regex>

#include "cli/agent_project.hpp"
#include "cli/api_client.hpp"
#include "cli/automation_commands.hpp"
#include "cli/command_plumbing.hpp"
#include "cli/exit_codes.hpp"
#include "cli/follow.hpp"
#include "cli/format.hpp"
#include "cli/host_endpoint.hpp"
#include "cli/mcp_server.hpp"
#include "cli/params.hpp"
#include "cli/remix_writer.hpp"
#include "cli/resolve.hpp"

namespace nightshift::cli {
namespace json = boost::json;

namespace {

constexpr std::size_t kTaskColumnWidth = 40;

// ---- shared plumbing ------------------------------------------------------

// Adds a subcommand whose callback runs `body` with the shared options.
template <class Options>
CLI::App* add_command(CLI::App& parent, const std::string& name, const std::string& description,
                      int& exit_code, std::shared_ptr<Options> options,
                      std::function<int(Options&)> body) {
  auto* command = parent.add_subcommand(name, description);
  command->footer(exit_code_help());
  command->callback([&exit_code, options, body = std::move(body)] {
    exit_code = run_guarded([&] { return body(*options); });
  });
  return command;
}

void print_json(const json::value& value) {
  std::cout << json::serialize(value) << '\n';
}

std::string read_text_file(const std::string& path) {
  if (path == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CliError(ExitCode::usage, "cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool stdout_colour() {
  return colour_enabled(STDOUT_FILENO);
}
bool stderr_is_terminal() {
  return ::isatty(STDERR_FILENO) == 1;
}

// ---- agents ---------------------------------------------------------------

struct AgentsOptions {
  HostOptions host;
  bool json = false;
  bool rescan = false;
};

std::string source_heading(const std::string& source) {
  if (source == "installed") return "Installed agents";
  if (source == "local") return "Local agents (workspace)";
  if (source == "remix") return "Remixes";
  return "Agents from '" + source + "'";
}

int agents_command(AgentsOptions& options) {
  ApiClient api(resolve_endpoint(options.host));
  auto agents = api.agents(options.rescan);
  if (options.json) {
    print_json(json::object{{"agents", std::move(agents)}});
    return 0;
  }
  if (agents.empty()) {
    std::cout << "no agents found\n";
    return 0;
  }
  const bool colour = stdout_colour();
  const std::vector<std::string> known_order{"installed", "local", "remix"};
  std::map<std::string, Table> groups;
  std::vector<std::string> order = known_order;
  for (const auto& value : agents) {
    const auto& agent = value.as_object();
    const auto source = string_member(agent, "source");
    if (std::find(order.begin(), order.end(), source) == order.end()) order.push_back(source);
    auto [group, inserted] =
        groups.try_emplace(source, Table({"ID", "VERSION", "ISOLATION", "DESCRIPTION"}));
    const bool available = !agent.contains("available") || agent.at("available") == true;
    std::string description = string_member(agent, "description");
    if (const auto base = string_member(agent, "baseAgentId"); !base.empty()) {
      description += (description.empty() ? "" : " ") + std::string("(remix of ") + base + ")";
    }
    if (!available) description = "unavailable: " + string_member(agent, "error");
    group->second.add_row({{string_member(agent, "id"), available ? Style::none : Style::dim},
                           {string_member(agent, "version")},
                           {string_member(agent, "isolation")},
                           {description, available ? Style::none : Style::red}});
  }
  bool first = true;
  for (const auto& source : order) {
    const auto group = groups.find(source);
    if (group == groups.end()) continue;
    std::cout << (first ? "" : "\n") << paint(source_heading(source), Style::bold, colour) << '\n';
    group->second.print(std::cout, colour);
    first = false;
  }
  return 0;
}

// ---- start ----------------------------------------------------------------

struct StartOptions {
  HostOptions host;
  std::string agent;
  std::string task;
  std::string task_file;
  std::vector<std::string> params;
  bool follow = false;
  bool json = false;
};

// Says how a followed or awaited run ended, on stderr unless it completed.
void report_outcome(const json::object& run) {
  const auto status = string_member(run, "status");
  const auto id = string_member(run, "instanceId");
  if (status == "completed") return;
  std::cerr << "nightshift: run " << id << ' ' << status;
  if (const auto error = string_member(run, "error"); !error.empty()) std::cerr << ": " << error;
  std::cerr << '\n';
}

int start_command(StartOptions& options) {
  auto params = parse_params(options.params);
  std::optional<std::string> task;
  if (!options.task_file.empty()) {
    task = read_text_file(options.task_file);
  } else if (!options.task.empty()) {
    task = options.task;
  }
  ApiClient api(resolve_endpoint(options.host));
  json::object body{{"agentId", resolve_agent_id(api, options.agent)}, {"params", params}};
  if (task) body["task"] = *task;
  const auto run = api.start(body);
  const auto instance_id = string_member(run, "instanceId");
  if (options.json) {
    print_json(run);
  } else {
    std::cout << instance_id << '\n' << std::flush;
  }
  if (!options.follow) return 0;
  LogPrinter printer(options.json, stdout_colour(), !options.json && stderr_is_terminal());
  const auto final_run = follow_run(api, instance_id, printer, true);
  if (options.json) print_json(final_run);
  report_outcome(final_run);
  return exit_code_for_outcome(final_run);
}

// ---- ps -------------------------------------------------------------------

struct PsOptions {
  HostOptions host;
  bool all = false;
  std::string status;
  std::string agent;
  unsigned page_size = 500;
  bool json = false;
};

// The host executing the run (null while queued, or from an older host).
std::string host_or_dash(const json::object& run) {
  const auto host = string_member(run, "host");
  return host.empty() ? "-" : host;
}

void add_run_row(Table& table, const json::object& run, TimePoint now, std::size_t id_length) {
  const auto status = string_member(run, "status");
  auto started = parse_timestamp(string_member(run, "startedAt"));
  if (!started) started = parse_timestamp(string_member(run, "createdAt"));
  const bool queued = status == "queued";
  table.add_row({{string_member(run, "instanceId").substr(0, id_length)},
                 {string_member(run, "agentId")},
                 {status, status_style(status)},
                 {string_member(run, "isolation")},
                 {started ? format_relative(*started, now) : "-"},
                 {queued ? "-" : format_duration(int_member(run, "durationMs"))},
                 {host_or_dash(run)},
                 {truncate_text(string_member(run, "task"), kTaskColumnWidth)}});
}

int ps_command(PsOptions& options) {
  const bool terminal_filter = is_terminal_status(options.status);
  ApiClient api(resolve_endpoint(options.host));
  RunQuery query;
  query.include_history = options.all || terminal_filter;
  query.page_size = options.page_size;
  if (terminal_filter) query.status = options.status;
  if (!options.agent.empty()) query.agent_id = resolve_agent_id(api, options.agent);
  auto lists = api.runs(query);
  json::array active;
  for (auto& run : lists.active) {
    const bool keep =
        !terminal_filter &&
        (options.status.empty() || string_member(run.as_object(), "status") == options.status);
    if (keep) active.push_back(std::move(run));
  }
  if (options.json) {
    print_json(json::object{{"active", std::move(active)},
                            {"history", std::move(lists.history)},
                            {"nextCursor", nullptr}});
    return 0;
  }
  if (active.empty() && lists.history.empty()) {
    std::cout << (query.include_history ? "no runs\n" : "no active runs\n");
    return 0;
  }
  Table table({"ID", "AGENT", "STATUS", "ISOLATION", "STARTED", "DURATION", "HOST", "TASK"});
  const auto now = std::chrono::system_clock::now();
  std::vector<std::string> ids;
  for (const auto* list : {&active, &lists.history}) {
    for (const auto& run : *list) ids.push_back(string_member(run.as_object(), "instanceId"));
  }
  const auto id_length = unique_prefix_length(ids);
  for (const auto* list : {&active, &lists.history}) {
    for (const auto& run : *list) add_run_row(table, run.as_object(), now, id_length);
  }
  table.print(std::cout, stdout_colour());
  return 0;
}

// ---- show -----------------------------------------------------------------

// A crash, a kill or a broken limit said plainly (the error holds the detail).
std::string ending_in_words(std::string_view error) {
  if (error.starts_with("agent crashed")) return "the agent's process crashed";
  if (error.starts_with("killed after")) return "the host killed the agent: it did not stop";
  if (error.starts_with("agent process exited")) return "the agent's process exited early";
  if (error.starts_with("exceeded its") || error.starts_with("timed out")) {
    return "the host ended it at a limit";
  }
  return {};
}

struct RunIdOptions {
  HostOptions host;
  std::string id;
  bool json = false;
  bool follow = false;
};

std::string time_line(const json::object& run, std::string_view key, TimePoint now) {
  const auto when = parse_timestamp(string_member(run, key));
  if (!when) return "-";
  return format_local(*when) + " (" + format_relative(*when, now) + ")";
}

int show_command(RunIdOptions& options) {
  ApiClient api(resolve_endpoint(options.host));
  const auto run = api.run(resolve_run_id(api, options.id));
  if (options.json) {
    print_json(run);
    return 0;
  }
  const bool colour = stdout_colour();
  const auto now = std::chrono::system_clock::now();
  const auto status = string_member(run, "status");
  std::vector<std::pair<std::string, Table::Cell>> fields{
      {"ID", {string_member(run, "instanceId")}},
      {"Thread", {string_member(run, "threadId")}},
      {"Agent", {string_member(run, "agentId")}},
      {"Status", {status, status_style(status)}},
      {"Task", {truncate_text(string_member(run, "task"), 200)}},
      {"Params", {string_member(run, "params")}},
      {"Created", {time_line(run, "createdAt", now)}},
      {"Started", {time_line(run, "startedAt", now)}},
      {"Ended", {time_line(run, "endedAt", now)}},
      {"Duration", {format_duration(int_member(run, "durationMs"))}},
      {"Host", {host_or_dash(run)}},
  };
  // Where the run came from, when not a first start by hand.
  std::vector<std::string> origin;
  if (const auto retry_of = string_member(run, "retryOf"); !retry_of.empty()) {
    origin.push_back("attempt " + std::to_string(int_member(run, "attempt")) + ", retry of " +
                     retry_of);
  }
  if (const auto rerun_of = string_member(run, "rerunOf"); !rerun_of.empty()) {
    origin.push_back("re-run of " + rerun_of);
  }
  if (const auto schedule = string_member(run, "scheduleId"); !schedule.empty()) {
    origin.push_back("schedule " + schedule);
  }
  if (!origin.empty()) {
    std::string text = origin.front();
    for (std::size_t i = 1; i < origin.size(); ++i) text += "; " + origin[i];
    fields.push_back({"Origin", {text}});
  }
  if (const auto* progress = run.if_contains("progress"); progress && progress->is_number()) {
    fields.push_back(
        {"Progress",
         {std::to_string(static_cast<int>(progress->to_number<double>() * 100 + 0.5)) + "%"}});
  }
  if (const auto isolation = string_member(run, "isolation"); !isolation.empty()) {
    fields.push_back({"Isolation",
                      {isolation == "process" ? "process (its own nightshift-worker)"
                                              : "thread (inside the host)"}});
  }
  if (const auto error = string_member(run, "error"); !error.empty()) {
    fields.push_back({"Error", {error, Style::red}});
    if (const auto words = ending_in_words(error); !words.empty()) {
      fields.push_back({"Ended by", {words, Style::red}});
    }
  }
  if (const auto result = string_member(run, "result"); !result.empty()) {
    fields.push_back({"Result", {truncate_text(result, 200)}});
  }
  fields.push_back({"Log entries", {std::to_string(int_member(run, "logCount"))}});
  if (const auto* usage = run.if_contains("usage"); usage && usage->is_object()) {
    const auto prompt = int_member(usage->get_object(), "promptTokens");
    const auto completion = int_member(usage->get_object(), "completionTokens");
    fields.push_back({"Tokens",
                      {std::to_string(prompt + completion) + " (" + std::to_string(prompt) +
                       " prompt, " + std::to_string(completion) + " completion)"}});
  }
  if (const auto* accepts = run.if_contains("acceptsMessages"); accepts && accepts->is_bool()) {
    fields.push_back({"Messages", {accepts->get_bool() ? "accepted (nightshift send)" : "no"}});
  }
  std::size_t label_width = 0;
  for (const auto& [label, cell] : fields) label_width = std::max(label_width, label.size());
  for (const auto& [label, cell] : fields) {
    std::cout << paint(label + ":", Style::bold, colour)
              << std::string(label_width - label.size() + 2, ' ')
              << paint(cell.text.empty() ? "-" : cell.text, cell.style, colour) << '\n';
  }
  return 0;
}

// ---- logs, stop, wait, rm ---------------------------------------------------

int logs_command(RunIdOptions& options) {
  ApiClient api(resolve_endpoint(options.host));
  const auto instance_id = resolve_run_id(api, options.id);
  LogPrinter printer(options.json, stdout_colour(), options.follow && stderr_is_terminal());
  if (!options.follow) {
    print_log_pages(api, instance_id, printer);
    return 0;
  }
  const auto final_run = follow_run(api, instance_id, printer, true);
  report_outcome(final_run);
  return exit_code_for_outcome(final_run);
}

int stop_command(RunIdOptions& options) {
  ApiClient api(resolve_endpoint(options.host));
  const auto run = api.stop(resolve_run_id(api, options.id));
  if (options.json) {
    print_json(run);
  } else {
    std::cout << string_member(run, "instanceId") << ' ' << string_member(run, "status") << '\n';
  }
  return 0;
}

struct SendOptions {
  HostOptions host;
  std::string id;
  std::string text;
  bool json = false;
};

int send_command(SendOptions& options) {
  if (options.text.empty()) throw CliError(ExitCode::usage, "the message is empty");
  ApiClient api(resolve_endpoint(options.host));
  const auto instance_id = resolve_run_id(api, options.id);
  const auto answer = api.send_message(instance_id, options.text);
  if (options.json) {
    print_json(answer);
  } else {
    std::cout << instance_id << " message recorded as log entry " << int_member(answer, "seq")
              << '\n';
  }
  return 0;
}

int wait_command(RunIdOptions& options) {
  ApiClient api(resolve_endpoint(options.host));
  const auto instance_id = resolve_run_id(api, options.id);
  LogPrinter printer(false, false, stderr_is_terminal());
  const auto final_run = follow_run(api, instance_id, printer, false);
  if (options.json) {
    print_json(final_run);
  } else {
    const auto status = string_member(final_run, "status");
    std::cout << instance_id << ' ' << paint(status, status_style(status), stdout_colour())
              << " after " << format_duration(int_member(final_run, "durationMs")) << '\n';
  }
  report_outcome(final_run);
  return exit_code_for_outcome(final_run);
}

int rm_command(RunIdOptions& options) {
  ApiClient api(resolve_endpoint(options.host));
  const auto instance_id = resolve_run_id(api, options.id);
  api.remove(instance_id);
  std::cout << "removed " << instance_id << '\n';
  return 0;
}

// ---- remix new ------------------------------------------------------------

struct RemixNewOptions {
  HostOptions host;
  std::string name;
  std::string base;
  std::string description;
  std::vector<std::string> params;
  std::string instructions_file;
  std::string workspace;
  bool force = false;
};

std::string resolve_base_agent(RemixNewOptions& options) {
  static const std::regex agent_id("(installed|remix|local):[a-z0-9][a-z0-9._-]{0,63}");
  if (options.base.find(':') != std::string::npos) {
    if (!std::regex_match(options.base, agent_id)) {
      throw CliError(ExitCode::usage, "invalid --base '" + options.base +
                                          "': expected SOURCE:NAME, e.g. installed:sleep");
    }
    return options.base;
  }
  // A bare name needs the host's catalog to say which agent it means.
  ApiClient api(resolve_endpoint(options.host));
  return resolve_agent_id(api, options.base);
}

// Asks the host, when one answers, to rescan so the new remix can be started
// at once, and passes on what it says about it. The file is written either
// way: a host that is not running finds it when it starts.
void report_rescan(const HostOptions& host, const std::string& agent_id) {
  try {
    ApiClient api(resolve_endpoint(host));
    for (const auto& value : api.agents(true)) {
      const auto& agent = value.as_object();
      if (string_member(agent, "id") != agent_id) continue;
      if (agent.contains("available") && agent.at("available") == false) {
        std::cerr << "nightshift: warning: the host lists " << agent_id
                  << " as unavailable: " << string_member(agent, "error") << '\n';
      }
      return;
    }
  } catch (const CliError& error) {
    std::cerr << "nightshift: note: could not ask the host to rescan (" << error.what()
              << "); it finds the remix on its next start or rescan\n";
  }
}

int remix_new_command(RemixNewOptions& options) {
  if (!is_valid_agent_name(options.name)) {
    throw CliError(ExitCode::usage, "invalid remix name '" + options.name +
                                        "': use 1 to 64 of a-z, 0-9, '.', '_', '-', starting "
                                        "with a letter or digit");
  }
  RemixSpec spec;
  spec.name = options.name;
  spec.params = parse_params(options.params);
  spec.description = options.description;
  if (!options.instructions_file.empty()) {
    spec.instructions = read_text_file(options.instructions_file);
  }
  spec.base_agent = resolve_base_agent(options);
  const auto workspace = options.workspace.empty() ? std::filesystem::current_path()
                                                   : std::filesystem::path(options.workspace);
  const auto path = write_remix(workspace, spec, options.force);
  std::cout << "wrote " << path.string() << " (agent remix:" << spec.name << ")\n";
  report_rescan(options.host, "remix:" + spec.name);
  return 0;
}

// ---- agent new ------------------------------------------------------------

struct AgentNewOptions {
  std::string name;
  std::string language = "cpp";
  std::string dir;
};

int agent_new_command(AgentNewOptions& options) {
  AgentProjectSpec spec;
  spec.name = options.name;
  spec.language = options.language == "c" ? AgentLanguage::c : AgentLanguage::cpp;
  spec.dir = options.dir.empty() ? std::filesystem::path(options.name)
                                 : std::filesystem::path(options.dir);
  const auto files = write_agent_project(spec);
  std::cout << "wrote " << (options.language == "c" ? "a C" : "a C++") << " agent project in "
            << spec.dir.string() << ":";
  for (const auto& file : files) std::cout << ' ' << file.string();
  std::cout << "\nnext: build it and install it as a local agent, as "
            << (spec.dir / "README.md").string() << " says\n";
  return 0;
}

// ---- mcp ------------------------------------------------------------------

struct McpOptions {
  HostOptions host;
};

int mcp_command(McpOptions& options) {
  // Only JSON-RPC goes to stdout; a bad --url is refused before serving.
  return serve_mcp(std::cin, std::cout, resolve_endpoint(options.host));
}

// ---- registration ---------------------------------------------------------

void add_id_argument(CLI::App& command, std::string& id) {
  command.add_option("ID", id, "run id, or a unique prefix of one")->required();
}

void add_param_option(CLI::App& command, std::vector<std::string>& params) {
  command
      .add_option("--param,-p", params,
                  "KEY=VALUE, repeatable; VALUE is JSON when it parses as JSON, else a "
                  "string; a dotted KEY sets a nested member")
      ->allow_extra_args(false);
}

void add_agents(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<AgentsOptions>();
  auto* command =
      add_command<AgentsOptions>(app, "agents", "List the agents the host can run, grouped by kind",
                                 exit_code, options, agents_command);
  command->add_flag("--rescan", options->rescan,
                    "have the host look for agents again first (new remixes, rebuilt plugins)");
  add_host_options(*command, options->host);
  add_json_flag(*command, options->json);
}

void add_start(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<StartOptions>();
  auto* command =
      add_command<StartOptions>(app, "start", "Start a run of an agent and print its instanceId",
                                exit_code, options, start_command);
  command->add_option("AGENT", options->agent, "agent id (installed:echo) or unambiguous name")
      ->required();
  auto* task = command->add_option("--task", options->task, "the run's task text");
  command->add_option("--task-file", options->task_file, "read the task from a file ('-': stdin)")
      ->excludes(task);
  add_param_option(*command, options->params);
  command->add_flag("--follow,-f", options->follow,
                    "stream the run's log until it ends and exit with its outcome");
  add_host_options(*command, options->host);
  command->add_flag("--json", options->json,
                    "print the Run as JSON; with --follow, then each log entry and the final "
                    "Run, one JSON object per line");
}

void add_ps(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<PsOptions>();
  auto* command = add_command<PsOptions>(
      app, "ps", "List active runs (with --all, the history too)", exit_code, options, ps_command);
  command->add_flag("--all,-a", options->all, "include finished runs");
  command
      ->add_option("--status", options->status,
                   "only runs in this status (a terminal status lists the history)")
      ->check(CLI::IsMember({"queued", "running", "stopping", "completed", "failed", "cancelled"}));
  command->add_option("--agent", options->agent, "only runs of this agent (id or name)");
  command
      ->add_option("--page-size", options->page_size,
                   "history runs fetched per request (the whole history is listed)")
      ->capture_default_str()
      ->check(CLI::Range(1, 500));
  add_host_options(*command, options->host);
  add_json_flag(*command, options->json);
}

void add_run_command(CLI::App& app, int& exit_code, const std::string& name,
                     const std::string& description, std::function<int(RunIdOptions&)> body,
                     bool with_json, bool with_follow) {
  auto options = std::make_shared<RunIdOptions>();
  auto* command = add_command<RunIdOptions>(app, name, description, exit_code, options, body);
  add_id_argument(*command, options->id);
  if (with_follow) {
    command->add_flag("--follow,-f", options->follow,
                      "keep printing entries until the run ends, then exit with its outcome");
  }
  add_host_options(*command, options->host);
  if (with_json) add_json_flag(*command, options->json);
}

void add_send(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<SendOptions>();
  auto* command = add_command<SendOptions>(
      app, "send",
      "Send a message to a running agent that accepts messages (it joins its log and reaches the "
      "agent; refused with exit 8 while the run has too many unread messages)",
      exit_code, options, send_command);
  add_id_argument(*command, options->id);
  command->add_option("text", options->text, "the message (up to 64 KiB)")->required();
  add_host_options(*command, options->host);
  add_json_flag(*command, options->json);
}

void add_remix(CLI::App& app, int& exit_code) {
  auto* remix = app.add_subcommand("remix", "Create remixes of agents");
  remix->require_subcommand(1);
  auto options = std::make_shared<RemixNewOptions>();
  auto* command = add_command<RemixNewOptions>(
      *remix, "new", "Write <workspace>/.nightshift/remix/NAME.md, a remix of --base", exit_code,
      options, remix_new_command);
  command->add_option("NAME", options->name, "the remix's name: [a-z0-9][a-z0-9._-]{0,63}")
      ->required();
  command->add_option("--base", options->base, "the agent it remixes (id, or name via the host)")
      ->required();
  add_param_option(*command, options->params);
  command->add_option("--description", options->description, "one line saying what it does");
  command->add_option("--instructions-file", options->instructions_file,
                      "the remix's instructions (its Markdown body; '-': stdin)");
  command->add_option("--workspace", options->workspace, "workspace directory (default: cwd)");
  command->add_flag("--force", options->force, "overwrite an existing remix file");
  add_host_options(*command, options->host);
}

void add_agent(CLI::App& app, int& exit_code) {
  auto* agent = app.add_subcommand("agent", "Write agents of your own");
  agent->require_subcommand(1);
  auto options = std::make_shared<AgentNewOptions>();
  auto* command = add_command<AgentNewOptions>(
      *agent, "new",
      "Write an agent project (CMakeLists.txt, agent.json, source, README) that builds "
      "against the installed SDK",
      exit_code, options, agent_new_command);
  command->add_option("NAME", options->name, "the agent's name: [a-z0-9][a-z0-9._-]{0,63}")
      ->required();
  command->add_option("--lang", options->language, "the agent's language")
      ->check(CLI::IsMember({"cpp", "c"}))
      ->capture_default_str();
  command->add_option("--dir", options->dir,
                      "where to write the project; must not exist or be empty (default: ./NAME)");
}

void add_mcp(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<McpOptions>();
  auto* command = add_command<McpOptions>(
      app, "mcp",
      "Serve the Model Context Protocol on stdin/stdout, so that MCP clients can start and "
      "follow runs",
      exit_code, options, mcp_command);
  add_host_options(*command, options->host);
}

}  // namespace

void add_commands(CLI::App& app, int& exit_code) {
  add_agents(app, exit_code);
  add_start(app, exit_code);
  add_ps(app, exit_code);
  add_run_command(app, exit_code, "show", "Show one run", show_command, true, false);
  add_run_command(app, exit_code, "logs", "Print a run's log (--json: one entry object per line)",
                  logs_command, true, true);
  add_run_command(app, exit_code, "stop", "Ask a run to stop", stop_command, true, false);
  add_send(app, exit_code);
  add_run_command(app, exit_code, "wait",
                  "Wait until a run ends; exit 0 if it completed, 20 if it failed, 21 if it was "
                  "cancelled",
                  wait_command, true, false);
  add_run_command(app, exit_code, "rm", "Remove a finished run and its log", rm_command, false,
                  false);
  add_remix(app, exit_code);
  add_agent(app, exit_code);
  add_mcp(app, exit_code);
  add_automation_commands(app, exit_code);
}

}  // namespace nightshift::cli
