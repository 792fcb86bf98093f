/*
 * cluster_off.c — the cluster hooks of serve.h when the program is built
 * without libnats (tools/cluster/ is not compiled): `serve --nats` says so.
 */
#include "serve.h"

#include "cliutil.h"

#ifndef PM_HAVE_NATS
int cluster_node_attach(serve *s)
{
    (void)s;
    pm_cli_error("serve", "--nats: this postmark was built without libnats (no cluster mode)");
    return -1;
}
int cluster_node_prepare(serve *s) { (void)s; return -1; }
int cluster_node_start(serve *s) { (void)s; return -1; }
void cluster_node_stop(serve *s) { (void)s; }
int cluster_node_release(serve *s) { (void)s; return 0; }
void cluster_node_metrics(const serve *s, FILE *f) { (void)s; (void)f; }
#else
/* ISO C forbids an empty translation unit. */
typedef int cluster_off_unused;
#endif
