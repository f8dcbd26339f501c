// The compiled parts of the header-only Boost libraries the plugin uses, so
// that it depends on no Boost library at run time.
#include <boost/json/src.hpp>
#include <boost/url/src.hpp>
