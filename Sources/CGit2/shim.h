#ifndef PIPELINE_CGIT2_SHIM_H
#define PIPELINE_CGIT2_SHIM_H
#include <git2.h>
#endif
