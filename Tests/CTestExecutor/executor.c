// The test process's global executor: Swift concurrency's global jobs run on a pool that makes a thread whenever
// every thread it has is busy, instead of the runtime's pool of one thread per core.
//
// Why: on a two-core host the runtime's pool has two threads, and tests block them (a synchronous test waiting for
// a `pipeline` child process runs on one). Two such waits at once held both threads, so every other test's awaits
// (a health probe's next attempt, a server's answer) sat still for minutes: probes judged "not healthy within
// 120s" after one attempt, and a CI run stalled until its time ran out. Tests block by nature (they drive real
// processes); the product never runs on this executor.
//
// Installed through the runtime's documented hooks (swift_task_enqueueGlobal_hook and the delay and deadline
// hooks, declared in swift/Runtime/Concurrency.h), before main, so every job of the process goes through it.
#define _GNU_SOURCE
#include "CTestExecutor.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

typedef struct Job Job;
typedef struct { void *identity; uintptr_t implementation; } SerialExecutorRef;

typedef void (*enqueue_original)(Job *job) __attribute__((swiftcall));
typedef void (*delay_original)(unsigned long long delay, Job *job) __attribute__((swiftcall));
typedef void (*deadline_original)(long long sec, long long nsec, long long tsec, long long tnsec, int clock, Job *job)
    __attribute__((swiftcall));

extern void *swift_task_enqueueGlobal_hook;
extern void *swift_task_enqueueGlobalWithDelay_hook;
extern void *swift_task_enqueueGlobalWithDeadline_hook;
extern void swift_job_run(Job *job, SerialExecutorRef executor) __attribute__((swiftcall));

// MARK: The pool

typedef struct Node { Job *job; struct Node *next; } Node;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready = PTHREAD_COND_INITIALIZER;
static Node *head, *tail;
static long queued, idle, threads, made;
static const long most_threads = 1024;
static int installed;

static void *worker(void *unused) {
    (void)unused;
    pthread_mutex_lock(&lock);
    for (;;) {
        while (!head) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 30;
            idle++;
            int waited = pthread_cond_timedwait(&ready, &lock, &until);
            idle--;
            if (waited != 0 && !head) {  // idle for 30 s: the thread goes
                threads--;
                pthread_mutex_unlock(&lock);
                return NULL;
            }
        }
        Node *node = head;
        head = node->next;
        if (!head) tail = NULL;
        queued--;
        pthread_mutex_unlock(&lock);
        Job *job = node->job;
        free(node);
        swift_job_run(job, (SerialExecutorRef){0, 0});
        pthread_mutex_lock(&lock);
    }
}

static void enqueue(Job *job) {
    Node *node = malloc(sizeof *node);
    if (!node) abort();
    node->job = job;
    node->next = NULL;
    pthread_mutex_lock(&lock);
    if (tail) tail->next = node; else head = node;
    tail = node;
    queued++;
    // A thread for each job no idle thread will take.
    if (queued > idle && threads < most_threads) {
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attributes, 8 << 20);
        pthread_t thread;
        if (pthread_create(&thread, &attributes, worker, NULL) == 0) { threads++; made++; }
        pthread_attr_destroy(&attributes);
    }
    pthread_cond_signal(&ready);
    pthread_mutex_unlock(&lock);
}

// MARK: Later jobs: a timer thread hands them to the pool when they are due

typedef struct Timed { Job *job; struct timespec due; struct Timed *next; } Timed;

static pthread_mutex_t timer_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t timer_changed;
static Timed *timed;  // soonest first
static pthread_once_t timer_once = PTHREAD_ONCE_INIT;

static int before(struct timespec a, struct timespec b) {
    return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

static void *timer(void *unused) {
    (void)unused;
    pthread_mutex_lock(&timer_lock);
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        while (timed && !before(now, timed->due)) {
            Timed *first = timed;
            timed = first->next;
            pthread_mutex_unlock(&timer_lock);
            enqueue(first->job);
            free(first);
            pthread_mutex_lock(&timer_lock);
        }
        if (timed) pthread_cond_timedwait(&timer_changed, &timer_lock, &timed->due);
        else pthread_cond_wait(&timer_changed, &timer_lock);
    }
    return NULL;
}

static void start_timer(void) {
    pthread_condattr_t attributes;
    pthread_condattr_init(&attributes);
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
    pthread_cond_init(&timer_changed, &attributes);
    pthread_condattr_destroy(&attributes);
    pthread_t thread;
    if (pthread_create(&thread, NULL, timer, NULL) != 0) abort();
    pthread_detach(thread);
}

static void enqueue_after(unsigned long long nanoseconds, Job *job) {
    pthread_once(&timer_once, start_timer);
    Timed *entry = malloc(sizeof *entry);
    if (!entry) abort();
    entry->job = job;
    clock_gettime(CLOCK_MONOTONIC, &entry->due);
    unsigned long long total = (unsigned long long)entry->due.tv_nsec + nanoseconds % 1000000000ULL;
    entry->due.tv_sec += (time_t)(nanoseconds / 1000000000ULL + total / 1000000000ULL);
    entry->due.tv_nsec = (long)(total % 1000000000ULL);
    pthread_mutex_lock(&timer_lock);
    Timed **place = &timed;
    while (*place && !before(entry->due, (*place)->due)) place = &(*place)->next;
    entry->next = *place;
    *place = entry;
    pthread_cond_signal(&timer_changed);
    pthread_mutex_unlock(&timer_lock);
}

// MARK: The hooks

__attribute__((swiftcall)) static void enqueue_hook(Job *job, enqueue_original original) {
    (void)original;
    enqueue(job);
}

__attribute__((swiftcall)) static void delay_hook(unsigned long long delay, Job *job, delay_original original) {
    (void)original;
    enqueue_after(delay, job);
}

// The runtime's clocks: 1 continuous (CLOCK_BOOTTIME on Linux), 2 suspending (CLOCK_MONOTONIC), 3 wall.
__attribute__((swiftcall)) static void deadline_hook(
    long long sec, long long nsec, long long tsec, long long tnsec, int clock, Job *job, deadline_original original) {
    (void)tsec;
    (void)tnsec;
    (void)original;
    struct timespec now;
    clock_gettime(clock == 1 ? CLOCK_BOOTTIME : clock == 3 ? CLOCK_REALTIME : CLOCK_MONOTONIC, &now);
    long long left = (sec - (long long)now.tv_sec) * 1000000000LL + (nsec - (long long)now.tv_nsec);
    enqueue_after(left > 0 ? (unsigned long long)left : 0, job);
}

__attribute__((constructor)) static void install(void) {
    swift_task_enqueueGlobal_hook = (void *)enqueue_hook;
    swift_task_enqueueGlobalWithDelay_hook = (void *)delay_hook;
    swift_task_enqueueGlobalWithDeadline_hook = (void *)deadline_hook;
    installed = 1;
}

int pipeline_test_executor_installed(void) { return installed; }

long pipeline_test_executor_threads(void) {
    pthread_mutex_lock(&lock);
    long count = made;
    pthread_mutex_unlock(&lock);
    return count;
}
