// installed:repo-scan: a long-running analysis of a directory tree (the
// task, or the workspace): files, lines and bytes per language, the largest
// files and marker (TODO/FIXME) counts. It lists the files first, so that it
// can report progress while it reads them, and stops between files (and
// within a big one) when asked. The result is the report as JSON; the last
// log entries summarise it.
#include <algorithm>
#include <boost/json/src.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nightshift/agent.hpp>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "gitignore.hpp"
#include "languages.hpp"
#include "text_counter.hpp"
#include "tree_walker.hpp"

namespace nightshift::repo_scan {

using plugin_common::FoundFile;
using plugin_common::GitignoreRules;
using plugin_common::Problem;
using plugin_common::walk_tree;
using plugin_common::WalkResult;

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

// Listed by name in the result; beyond it they are only counted.
constexpr std::size_t max_listed_problems = 100;

struct ScanParams {
  std::vector<std::string> markers{"TODO", "FIXME"};
  std::size_t top_files = 10;
  bool use_gitignore = true;
};

ScanParams parse_params(std::string_view params_json) {
  json::error_code parse_error;
  const json::value parsed = json::parse(params_json, parse_error);
  if (parse_error || !parsed.is_object()) throw AgentFailure("the params are not a JSON object");
  const json::object& params = parsed.get_object();
  ScanParams out;
  if (const json::value* markers = params.if_contains("markers")) {
    if (!markers->is_array()) throw AgentFailure("param markers must be an array of words");
    out.markers.clear();
    for (const json::value& marker : markers->get_array()) {
      if (!marker.is_string() || marker.get_string().empty()) {
        throw AgentFailure("param markers must hold non-empty strings");
      }
      out.markers.emplace_back(marker.get_string());
    }
  }
  if (const json::value* top = params.if_contains("topFiles")) {
    const double value = top->is_number() ? top->to_number<double>() : -1;
    if (value < 0 || value > 10000 || std::floor(value) != value) {
      throw AgentFailure("param topFiles must be a whole number from 0 to 10000");
    }
    out.top_files = static_cast<std::size_t>(value);
  }
  if (const json::value* use = params.if_contains("useGitignore")) {
    if (!use->is_bool()) throw AgentFailure("param useGitignore must be true or false");
    out.use_gitignore = use->get_bool();
  }
  return out;
}

bool is_blank(std::string_view text) {
  return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

std::string trimmed(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(first, last - first + 1));
}

// The task names the directory; a relative one is taken from the workspace.
fs::path resolve_root(const RunContext& ctx) {
  const fs::path workspace =
      ctx.workspace().empty() ? fs::current_path() : fs::path(ctx.workspace());
  fs::path root = is_blank(ctx.task_view()) ? workspace : fs::path(trimmed(ctx.task_view()));
  if (root.is_relative()) root = workspace / root;
  std::error_code ec;
  const fs::path canonical = fs::canonical(root, ec);
  if (ec) throw AgentFailure("cannot scan " + root.string() + ": " + ec.message());
  if (!fs::is_directory(canonical, ec)) {
    throw AgentFailure("cannot scan " + root.string() + ": not a directory");
  }
  return canonical;
}

GitignoreRules read_gitignore(const fs::path& root) {
  const fs::path file = root / ".gitignore";
  std::error_code ec;
  if (!fs::is_regular_file(fs::symlink_status(file, ec))) return {};
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return GitignoreRules(text.str());
}

std::string human_bytes(std::uint64_t bytes) {
  constexpr const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(units)) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  if (unit == 0) {
    std::snprintf(text, sizeof text, "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(text, sizeof text, "%.1f %s", value, units[unit]);
  }
  return text;
}

// Reports progress as the work done grows, often enough to be smooth and
// rarely enough to be cheap; never backwards.
class ProgressReporter {
 public:
  ProgressReporter(const RunContext& ctx, std::uint64_t total_work)
      : ctx_(ctx), total_(std::max<std::uint64_t>(total_work, 1)) {}
  void advance(std::uint64_t work) {
    done_ += work;
    const double fraction = std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
    if (fraction - reported_ >= 0.001) report(fraction);
  }
  void finish() { report(1.0); }

 private:
  void report(double fraction) {
    reported_ = fraction;
    ctx_.progress(fraction);
  }
  const RunContext& ctx_;
  std::uint64_t total_;
  std::uint64_t done_ = 0;
  double reported_ = 0;
};

struct Totals {
  std::uint64_t files = 0;
  std::uint64_t lines = 0;
  std::uint64_t bytes = 0;
  std::vector<std::uint64_t> markers;
};

struct ScannedFile {
  std::string relative_path;
  std::string language;
  std::uint64_t bytes = 0;
};

// Everything the scan found; turned into the result and the summary.
struct Report {
  fs::path root;
  ScanParams params;
  WalkResult walk;
  bool complete = false;
  Totals all;
  std::uint64_t binary_files = 0;
  std::map<std::string, Totals> languages;
  std::vector<ScannedFile> scanned;
  std::vector<Problem> unreadable_files;

  void add(const FoundFile& file, std::string_view language, const FileCounts& counts) {
    for (Totals* totals : {&all, &languages[std::string(language)]}) {
      totals->markers.resize(params.markers.size(), 0);
      totals->files += 1;
      totals->lines += counts.lines;
      totals->bytes += counts.bytes;
      for (std::size_t i = 0; i < counts.markers.size(); ++i)
        totals->markers[i] += counts.markers[i];
    }
    if (counts.binary) ++binary_files;
    scanned.push_back({file.relative_path, std::string(language), counts.bytes});
  }

  std::vector<ScannedFile> largest() const {
    std::vector<ScannedFile> out = scanned;
    const std::size_t n = std::min(params.top_files, out.size());
    std::partial_sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n), out.end(),
                      [](const ScannedFile& a, const ScannedFile& b) {
                        return a.bytes != b.bytes ? a.bytes > b.bytes
                                                  : a.relative_path < b.relative_path;
                      });
    out.resize(n);
    return out;
  }

  // Languages with the most lines first (then bytes, then name).
  std::vector<std::pair<std::string, Totals>> languages_by_size() const {
    std::vector<std::pair<std::string, Totals>> out(languages.begin(), languages.end());
    std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      if (a.second.lines != b.second.lines) return a.second.lines > b.second.lines;
      return a.second.bytes > b.second.bytes;
    });
    return out;
  }
};

json::object markers_json(const ScanParams& params, const std::vector<std::uint64_t>& counts) {
  json::object out;
  for (std::size_t i = 0; i < params.markers.size(); ++i) {
    out[params.markers[i]] = i < counts.size() ? counts[i] : 0;
  }
  return out;
}

json::array problems_json(const std::vector<Problem>& problems) {
  json::array out;
  for (std::size_t i = 0; i < problems.size() && i < max_listed_problems; ++i) {
    out.push_back(json::object{{"path", problems[i].relative_path}, {"error", problems[i].reason}});
  }
  return out;
}

std::string report_json(const Report& report) {
  json::array languages;
  for (const auto& [name, totals] : report.languages_by_size()) {
    languages.push_back(json::object{{"language", name},
                                     {"files", totals.files},
                                     {"lines", totals.lines},
                                     {"bytes", totals.bytes},
                                     {"markers", markers_json(report.params, totals.markers)}});
  }
  json::array largest;
  for (const ScannedFile& file : report.largest()) {
    largest.push_back(json::object{
        {"path", file.relative_path}, {"language", file.language}, {"bytes", file.bytes}});
  }
  json::object result{
      {"root", report.root.string()},
      {"complete", report.complete},
      {"filesFound", report.walk.files.size()},
      {"files", report.all.files},
      {"lines", report.all.lines},
      {"bytes", report.all.bytes},
      {"binaryFiles", report.binary_files},
      {"markers", markers_json(report.params, report.all.markers)},
      {"languages", std::move(languages)},
      {"largestFiles", std::move(largest)},
      {"unreadableFiles", report.unreadable_files.size()},
      {"unreadable", problems_json(report.unreadable_files)},
      {"unreadableDirectories", problems_json(report.walk.unreadable_directories)},
      {"skipped", json::object{{"ignored", report.walk.ignored},
                               {"symlinks", report.walk.symlinks},
                               {"special", report.walk.special}}},
  };
  return json::serialize(result);
}

std::string markers_text(const ScanParams& params, const std::vector<std::uint64_t>& counts) {
  std::string out;
  for (std::size_t i = 0; i < params.markers.size() && i < counts.size(); ++i) {
    out += ", " + params.markers[i] + " " + std::to_string(counts[i]);
  }
  return out;
}

void log_summary(const RunContext& ctx, const Report& report) {
  if (!report.complete) {
    ctx.info("Stopped after " + std::to_string(report.all.files) + " of " +
             std::to_string(report.walk.files.size()) + " files; the report covers those.");
  }
  ctx.info("Scanned " + std::to_string(report.all.files) + " files under " + report.root.string() +
           ": " + std::to_string(report.all.lines) + " lines, " + human_bytes(report.all.bytes) +
           markers_text(report.params, report.all.markers) + ".");
  ctx.info("Skipped " + std::to_string(report.walk.ignored) + " ignored, " +
           std::to_string(report.walk.symlinks) + " symlinks, " +
           std::to_string(report.walk.special) + " special files; " +
           std::to_string(report.binary_files) + " binary files counted by size only.");
  for (const auto& [name, totals] : report.languages_by_size()) {
    ctx.info("  " + name + ": " + std::to_string(totals.files) + " files, " +
             std::to_string(totals.lines) + " lines, " + human_bytes(totals.bytes) +
             markers_text(report.params, totals.markers));
  }
  const auto largest = report.largest();
  if (!largest.empty()) ctx.info("Largest files:");
  for (const ScannedFile& file : largest) {
    ctx.info("  " + file.relative_path + " (" + human_bytes(file.bytes) + ")");
  }
  const std::size_t unreadable =
      report.unreadable_files.size() + report.walk.unreadable_directories.size();
  if (unreadable > 0) {
    ctx.warn(std::to_string(report.unreadable_files.size()) + " files and " +
             std::to_string(report.walk.unreadable_directories.size()) +
             " directories could not be read (listed in the result).");
  }
}

// Reads every listed file; false when a stop cut it short.
bool scan_files(const RunContext& ctx, Report& report) {
  std::uint64_t total_work = 0;
  for (const FoundFile& file : report.walk.files) total_work += file.bytes + 1;
  ProgressReporter progress(ctx, total_work);
  const auto keep_going = [&](std::uint64_t bytes) {
    progress.advance(bytes);
    return !ctx.cancelled();
  };
  for (const FoundFile& file : report.walk.files) {
    if (ctx.cancelled()) return false;
    const std::string_view language = language_of(file.path);
    try {
      const auto counts = count_file(file.path, report.params.markers, keep_going);
      if (!counts) return false;
      report.add(file, language, *counts);
    } catch (const std::system_error& e) {
      report.unreadable_files.push_back({file.relative_path, e.code().message()});
      ctx.warn("cannot read " + file.relative_path + ": " + e.code().message());
    }
    progress.advance(1);
  }
  progress.finish();
  return true;
}

class RepoScanAgent : public Agent {
 public:
  void run(RunContext& ctx) override {
    Report report;
    report.params = parse_params(ctx.params_json());
    report.root = resolve_root(ctx);
    report.all.markers.assign(report.params.markers.size(), 0);
    const GitignoreRules rules =
        report.params.use_gitignore ? read_gitignore(report.root) : GitignoreRules();
    ctx.info("Listing the files under " + report.root.string() + " (" +
             std::to_string(rules.size()) + " .gitignore patterns)");
    ctx.progress(0);
    report.walk = walk_tree(report.root, rules, [&] { return ctx.cancelled(); });
    for (const Problem& problem : report.walk.unreadable_directories) {
      ctx.warn("cannot list " + problem.relative_path + ": " + problem.reason);
    }
    if (!report.walk.stopped) {
      ctx.info("Scanning " + std::to_string(report.walk.files.size()) + " files");
      report.complete = scan_files(ctx, report);
    }
    ctx.set_result_json(report_json(report));
    log_summary(ctx, report);
  }
};

}  // namespace
}  // namespace nightshift::repo_scan

NIGHTSHIFT_AGENT(nightshift::repo_scan::RepoScanAgent)
