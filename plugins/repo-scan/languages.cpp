#include "languages.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <span>
#include <string>
#include <utility>

namespace nightshift::repo_scan {
namespace {

using Mapping = std::pair<std::string_view, std::string_view>;

// Whole file names that say the language better than any extension.
constexpr std::array file_names = {
    Mapping{"Makefile", "Makefile"},
    Mapping{"makefile", "Makefile"},
    Mapping{"GNUmakefile", "Makefile"},
    Mapping{"CMakeLists.txt", "CMake"},
    Mapping{"Dockerfile", "Dockerfile"},
    Mapping{"Containerfile", "Dockerfile"},
    Mapping{"Rakefile", "Ruby"},
    Mapping{"Gemfile", "Ruby"},
    Mapping{"Jenkinsfile", "Groovy"},
    Mapping{"meson.build", "Meson"},
    Mapping{"BUILD", "Bazel"},
    Mapping{"BUILD.bazel", "Bazel"},
    Mapping{"WORKSPACE", "Bazel"},
    Mapping{"Cargo.lock", "TOML"},
    Mapping{".gitignore", "Ignore List"},
    Mapping{".dockerignore", "Ignore List"},
    Mapping{".bashrc", "Shell"},
    Mapping{".profile", "Shell"},
};

// Extensions, lower case, without the dot.
constexpr std::array extensions = {
    Mapping{"py", "Python"},
    Mapping{"pyw", "Python"},
    Mapping{"pyi", "Python"},
    Mapping{"c", "C"},
    Mapping{"h", "C/C++ Header"},
    Mapping{"hh", "C/C++ Header"},
    Mapping{"hpp", "C/C++ Header"},
    Mapping{"hxx", "C/C++ Header"},
    Mapping{"h++", "C/C++ Header"},
    Mapping{"inl", "C/C++ Header"},
    Mapping{"ipp", "C/C++ Header"},
    Mapping{"cc", "C++"},
    Mapping{"cpp", "C++"},
    Mapping{"cxx", "C++"},
    Mapping{"c++", "C++"},
    Mapping{"cppm", "C++"},
    Mapping{"ixx", "C++"},
    Mapping{"js", "JavaScript"},
    Mapping{"mjs", "JavaScript"},
    Mapping{"cjs", "JavaScript"},
    Mapping{"jsx", "JavaScript"},
    Mapping{"ts", "TypeScript"},
    Mapping{"mts", "TypeScript"},
    Mapping{"cts", "TypeScript"},
    Mapping{"tsx", "TypeScript"},
    Mapping{"go", "Go"},
    Mapping{"rs", "Rust"},
    Mapping{"java", "Java"},
    Mapping{"kt", "Kotlin"},
    Mapping{"kts", "Kotlin"},
    Mapping{"cs", "C#"},
    Mapping{"fs", "F#"},
    Mapping{"rb", "Ruby"},
    Mapping{"php", "PHP"},
    Mapping{"sh", "Shell"},
    Mapping{"bash", "Shell"},
    Mapping{"zsh", "Shell"},
    Mapping{"ksh", "Shell"},
    Mapping{"fish", "Fish"},
    Mapping{"ps1", "PowerShell"},
    Mapping{"bat", "Batch"},
    Mapping{"cmd", "Batch"},
    Mapping{"html", "HTML"},
    Mapping{"htm", "HTML"},
    Mapping{"css", "CSS"},
    Mapping{"scss", "SCSS"},
    Mapping{"sass", "Sass"},
    Mapping{"less", "Less"},
    Mapping{"vue", "Vue"},
    Mapping{"svelte", "Svelte"},
    Mapping{"md", "Markdown"},
    Mapping{"markdown", "Markdown"},
    Mapping{"rst", "reStructuredText"},
    Mapping{"adoc", "AsciiDoc"},
    Mapping{"txt", "Text"},
    Mapping{"json", "JSON"},
    Mapping{"jsonc", "JSON"},
    Mapping{"yaml", "YAML"},
    Mapping{"yml", "YAML"},
    Mapping{"toml", "TOML"},
    Mapping{"ini", "INI"},
    Mapping{"cfg", "INI"},
    Mapping{"xml", "XML"},
    Mapping{"svg", "SVG"},
    Mapping{"sql", "SQL"},
    Mapping{"cmake", "CMake"},
    Mapping{"mk", "Makefile"},
    Mapping{"mak", "Makefile"},
    Mapping{"swift", "Swift"},
    Mapping{"m", "Objective-C"},
    Mapping{"mm", "Objective-C++"},
    Mapping{"scala", "Scala"},
    Mapping{"lua", "Lua"},
    Mapping{"pl", "Perl"},
    Mapping{"pm", "Perl"},
    Mapping{"r", "R"},
    Mapping{"dart", "Dart"},
    Mapping{"ex", "Elixir"},
    Mapping{"exs", "Elixir"},
    Mapping{"erl", "Erlang"},
    Mapping{"hs", "Haskell"},
    Mapping{"ml", "OCaml"},
    Mapping{"mli", "OCaml"},
    Mapping{"clj", "Clojure"},
    Mapping{"zig", "Zig"},
    Mapping{"nim", "Nim"},
    Mapping{"jl", "Julia"},
    Mapping{"f90", "Fortran"},
    Mapping{"f", "Fortran"},
    Mapping{"s", "Assembly"},
    Mapping{"asm", "Assembly"},
    Mapping{"cu", "CUDA"},
    Mapping{"proto", "Protocol Buffers"},
    Mapping{"gradle", "Gradle"},
    Mapping{"groovy", "Groovy"},
    Mapping{"tf", "HCL"},
    Mapping{"hcl", "HCL"},
    Mapping{"dockerfile", "Dockerfile"},
    Mapping{"tex", "TeX"},
    Mapping{"vim", "Vim Script"},
    Mapping{"el", "Emacs Lisp"},
    Mapping{"ipynb", "Jupyter Notebook"},
};

std::string_view find(std::span<const Mapping> table, std::string_view key) {
  const auto it = std::find_if(table.begin(), table.end(),
                               [&](const Mapping& mapping) { return mapping.first == key; });
  return it == table.end() ? std::string_view() : it->second;
}

}  // namespace

std::string_view language_of(const std::filesystem::path& file) {
  const std::string name = file.filename().string();
  if (const auto by_name = find(file_names, name); !by_name.empty()) return by_name;
  std::string extension = file.extension().string();
  if (extension.size() > 1) {
    extension.erase(0, 1);
    std::transform(extension.begin(), extension.end(), extension.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (const auto by_extension = find(extensions, extension); !by_extension.empty()) {
      return by_extension;
    }
  }
  return "Other";
}

}  // namespace nightshift::repo_scan
