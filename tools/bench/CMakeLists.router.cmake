# The router benchmarks' programs, run and compared by tools/bench/run-router:
# router_load (the producer that drives both servers, the discard server
# and the NATS publisher, on plain threads) and router_sluice (the router
# embedded through router/sluice.h).  The Go peer, go/router, is built by
# the runner with `go build`.  Paths are taken from this file's directory,
# so it may be included from anywhere.

add_executable(router_load ${CMAKE_CURRENT_LIST_DIR}/router_load.c)
target_link_libraries(router_load PRIVATE Threads::Threads)

add_executable(router_sluice ${CMAKE_CURRENT_LIST_DIR}/router_sluice.c)
target_link_libraries(router_sluice PRIVATE sluice_router sluice_io
  sluice_core)
