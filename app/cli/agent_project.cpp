#include "cli/agent_project.hpp"

#include <cctype>
#include <fstream>
#include <string_view>
#include <system_error>
#include <utility>

#include "cli/agent_templates.hpp"
#include "cli/exit_codes.hpp"
#include "cli/remix_writer.hpp"

namespace nightshift::cli {
namespace fs = std::filesystem;

namespace {

// A template from the binary; a missing one is a build mistake.
std::string_view template_text(const std::string& path) {
  const auto text = find_agent_template(path);
  if (!text) throw CliError(ExitCode::error, "no built-in template " + path + " (a build error)");
  return *text;
}

std::string replace_all(std::string_view text,
                        const std::vector<std::pair<std::string, std::string>>& values) {
  std::string out(text);
  for (const auto& [placeholder, value] : values) {
    for (auto at = out.find(placeholder); at != std::string::npos;
         at = out.find(placeholder, at + value.size())) {
      out.replace(at, placeholder.size(), value);
    }
  }
  return out;
}

void check_target_dir(const fs::path& dir) {
  std::error_code error;
  const auto status = fs::status(dir, error);
  if (status.type() == fs::file_type::not_found) return;
  if (error) throw CliError(ExitCode::usage, "cannot use " + dir.string() + ": " + error.message());
  if (!fs::is_directory(status)) {
    throw CliError(ExitCode::already_exists,
                   dir.string() + " exists and is not a directory; choose another --dir");
  }
  if (!fs::is_empty(dir, error) || error) {
    throw CliError(ExitCode::already_exists,
                   dir.string() +
                       " exists and is not empty; choose another --dir (or name), or empty it "
                       "first: agent new never overwrites files");
  }
}

void write_text(const fs::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw CliError(ExitCode::error, "cannot write " + file.string());
}

}  // namespace

std::string agent_class_name(const std::string& name) {
  std::string result;
  bool word_start = true;
  for (const char c : name) {
    if (c == '-' || c == '_' || c == '.') {
      word_start = true;
      continue;
    }
    result += word_start ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    word_start = false;
  }
  if (result.empty() || std::isdigit(static_cast<unsigned char>(result.front()))) {
    return "Agent" + result;
  }
  if (!result.ends_with("Agent")) result += "Agent";
  return result;
}

std::vector<fs::path> write_agent_project(const AgentProjectSpec& spec) {
  if (!is_valid_agent_name(spec.name)) {
    throw CliError(ExitCode::usage, "invalid agent name '" + spec.name +
                                        "': use 1 to 64 of a-z, 0-9, '.', '_', '-', starting "
                                        "with a letter or digit");
  }
  check_target_dir(spec.dir);

  const bool cpp = spec.language == AgentLanguage::cpp;
  const std::string lang = cpp ? "cpp" : "c";
  const std::string source = cpp ? "agent.cpp" : "agent.c";
  const std::vector<std::pair<std::string, std::string>> values{
      {"@NAME@", spec.name},
      {"@CLASS@", agent_class_name(spec.name)},
      {"@SOURCE@", source},
      {"@LANGUAGE@", cpp ? "C++" : "plain C"},
      {"@COMPILER@", cpp ? "C++20" : "C11"},
  };
  // Rendered before anything is written, so a missing template leaves no
  // half-made project behind.
  const std::vector<std::pair<fs::path, std::string>> files{
      {"CMakeLists.txt", replace_all(template_text(lang + "/CMakeLists.txt"), values)},
      {"agent.json", replace_all(template_text(lang + "/agent.json"), values)},
      {source, replace_all(template_text(lang + "/" + source), values)},
      {"README.md", replace_all(template_text("common/README.md"), values)},
  };

  std::error_code error;
  fs::create_directories(spec.dir, error);
  if (error) {
    throw CliError(ExitCode::usage, "cannot create " + spec.dir.string() + ": " + error.message());
  }
  std::vector<fs::path> written;
  for (const auto& [file, text] : files) {
    write_text(spec.dir / file, text);
    written.push_back(file);
  }
  return written;
}

}  // namespace nightshift::cli
