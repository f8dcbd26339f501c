#include "install_layout.hpp"

#include <unistd.h>

#include <system_error>

namespace nightshift {

std::filesystem::path installed_or_built(std::string_view name, int mode,
                                         std::filesystem::path built) {
  std::error_code error;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (!error) {
    const auto beside = self.parent_path().parent_path() / "lib" / "nightshift" / name;
    if (::access(beside.c_str(), mode) == 0) return beside;
  }
  return built;
}

}  // namespace nightshift
