// A plugin built as agents are built (hidden visibility, the SDK's version
// script) exports nightshift_agent_entry_v1 and nothing else: no C++ runtime,
// Boost or SDK symbol leaks into the host's namespace.
#include <gtest/gtest.h>

#include <agent_harness.hpp>
#include <array>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

// The names of the dynamic symbols `library` defines, read with nm.
std::vector<std::string> defined_dynamic_symbols(const std::string& library) {
  const std::string command =
      std::string("'") + NIGHTSHIFT_TEST_NM + "' -D --defined-only '" + library + "'";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
  if (!pipe) throw std::runtime_error("cannot run " + command);
  std::string output;
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe.get()) != nullptr) output += buffer.data();
  if (::pclose(pipe.release()) != 0) throw std::runtime_error(command + " failed");

  // Lines are "<address> <type> <name>"; the name is the last field.
  std::vector<std::string> names;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    const auto space = line.find_last_of(' ');
    if (space != std::string::npos) names.push_back(line.substr(space + 1));
  }
  return names;
}

class Exports : public ::testing::TestWithParam<const char*> {};

}  // namespace

TEST_P(Exports, PluginExportsOnlyTheEntrySymbol) {
  EXPECT_EQ(defined_dynamic_symbols(GetParam()),
            (std::vector<std::string>{"nightshift_agent_entry_v1"}));
}

// Every plugin this build makes the way agents are made.
const char* const agent_plugins[] = {NIGHTSHIFT_TEST_C_AGENT,      NIGHTSHIFT_TEST_PROBE,
#ifdef NIGHTSHIFT_TEST_STATIC_PROBE
                                     NIGHTSHIFT_TEST_STATIC_PROBE,
#endif
                                     NIGHTSHIFT_TEST_ECHO,         NIGHTSHIFT_TEST_SLEEP,
                                     NIGHTSHIFT_TEST_V1_0_AGENT,   NIGHTSHIFT_TEST_LIFECYCLE};

INSTANTIATE_TEST_SUITE_P(Plugins, Exports, ::testing::ValuesIn(agent_plugins),
                         nightshift::testing::PluginParamName());
