#ifndef CTESTEXECUTOR_H
#define CTESTEXECUTOR_H

/// Whether the test process runs Swift concurrency's global jobs on the elastic pool (see executor.c); installed
/// when the test binary loads.
int pipeline_test_executor_installed(void);

/// Threads the pool has made so far (for the test that checks it).
long pipeline_test_executor_threads(void);

#endif
