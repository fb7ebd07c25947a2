#ifndef PIPELINE_CGITSOCKET_H
#define PIPELINE_CGITSOCKET_H

/*
 * The socket libgit2 uses for unencrypted connections (git://), in place of its own while enabled:
 *  - it acknowledges what it reads at once (TCP_QUICKACK). git daemon writes its ACK lines one small write at a
 *    time; with Nagle on the server and delayed ACKs here, each negotiation round otherwise waits 40 ms;
 *  - it gives up on a connection after `connect_timeout_ms` and on a remote that sends nothing for
 *    `stall_timeout_ms`, saying so, where libgit2's own socket waits for ever.
 * Registration is process-wide: enable it only around git:// fetches (libssh2 reaches into libgit2's own socket).
 */
int pipeline_git_socket_use(int enabled, int connect_timeout_ms, int stall_timeout_ms);

#endif
