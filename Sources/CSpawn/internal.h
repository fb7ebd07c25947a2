#ifndef PIPELINE_CSPAWN_INTERNAL_H
#define PIPELINE_CSPAWN_INTERNAL_H

/// Closes every descriptor from `lowest` on (close_range, else one by one); for a child between fork and exec
/// (spawn.c) or becoming a stage (stage_server.c). Async-signal-safe.
void pipeline_close_from(int lowest);
#endif
