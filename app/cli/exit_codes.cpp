#include "cli/exit_codes.hpp"

namespace nightshift::cli {

std::string exit_code_help() {
  return "Exit codes:\n"
         "   0  success (wait, --follow: the run completed)\n"
         "   1  unexpected error\n"
         "   2  invalid argument (unknown option, missing argument, bad name, unreadable file,\n"
         "      malformed --param)\n"
         "   3  no Nightshift host at the URL\n"
         "   4  the host refused the token (401)\n"
         "   5  unknown run, or an id prefix matching no run or several runs\n"
         "   6  unknown, ambiguous or unavailable agent\n"
         "   7  the host rejected the request (e.g. invalid params)\n"
         "   8  the host is busy: at capacity (503), or the run has too many unread messages "
         "(429)\n"
         "   9  conflict: stop of or message to a run that has ended, rm of an active run (409)\n"
         "  10  remix new: the file exists (use --force); agent new: the directory is not empty\n"
         "  20  wait, --follow: the run failed\n"
         "  21  wait, --follow: the run was cancelled";
}

}  // namespace nightshift::cli
