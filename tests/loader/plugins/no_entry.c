/* A shared library that is not an agent: it exports a function, but no
 * nightshift_agent_entry_v<N>. */
#include <nightshift/agent.h>

NIGHTSHIFT_EXPORT int loader_test_not_an_agent(void);
NIGHTSHIFT_EXPORT int loader_test_not_an_agent(void) {
  return 42;
}
