// Boost.JSON and Boost.URL compiled into the fuzzers from their sources, so
// that the sanitizers and libFuzzer's coverage see into them too.
#include <boost/json/src.hpp>
#include <boost/url/src.hpp>
