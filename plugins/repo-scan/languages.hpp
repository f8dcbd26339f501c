// Which language a file is written in, judged by its name alone.
#pragma once

#include <filesystem>
#include <string_view>

namespace nightshift::repo_scan {

// The language's usual name ("Python", "C++", "C/C++ Header", ...), or
// "Other" when neither the file's name nor its extension is known.
std::string_view language_of(const std::filesystem::path& file);

}  // namespace nightshift::repo_scan
