# The io benchmarks' programs, run and compared by tools/bench/run-io:
# io_peers (the plain C servers, the load generator and the idle client)
# and io_sluice (the same server on Sluice's io layer).  The Go peer,
# go/ioserver, is built by the runner with `go build`.  Paths are taken
# from this file's directory, so it may be included from anywhere.

add_executable(io_peers ${CMAKE_CURRENT_LIST_DIR}/io_peers.c)
target_link_libraries(io_peers PRIVATE Threads::Threads)

if(TARGET sluice_io)
  add_executable(io_sluice ${CMAKE_CURRENT_LIST_DIR}/io_sluice.c)
  target_link_libraries(io_sluice PRIVATE sluice_io sluice_core)
else()
  message(STATUS "io_sluice: no sluice_io target; building the peers only")
endif()
