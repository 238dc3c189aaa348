/* SPDX-License-Identifier: MIT */
/*
 * sluice-load: a load generator for routers that speak Sluice's line and
 * frame formats (docs/sluice-load.md).
 *
 * Exit status: 0 when the run went through and, in verify mode, every
 * key's last version came back; 1 when it failed or verification found
 * keys stale or missing; 2 for a bad command line.
 */
#include <stdio.h>
#include <stdlib.h>

#include "tools/load/opts.h"
#include "tools/load/report.h"
#include "tools/load/run.h"

int
main(int argc, char **argv)
{
	struct load_opts o;
	struct load_result res;
	char err[512];
	int r, status;

	r = load_opts_parse(argc, argv, &o, err, sizeof(err));
	if (r > 0)
		return 0;
	if (r < 0) {
		fprintf(stderr, "sluice-load: %s\n", err);
		return 2;
	}
	if (o.merge) {
		status = load_merge(&o);
		free(o.merge_files);
		return status;
	}

	r = load_run(&o, &res);
	if (r && !res.stats.rows && !res.sent && !o.json) {
		/* Nothing ran: the reason is all there is to say. */
		fprintf(stderr, "sluice-load: %s\n", res.fatal);
		load_result_fini(&res);
		return 1;
	}
	if (o.json)
		load_report_json(&o, &res, stdout);
	else
		load_report_table(&o, &res, stdout);
	fflush(stdout);
	if (res.fatal[0])
		fprintf(stderr, "sluice-load: %s\n", res.fatal);
	status = load_report_passed(&o, &res) ? 0 : 1;
	if (o.report_dir && load_report_plots(&o, &res, o.report_dir, stderr))
		status = 1;
	if (o.hist_out && load_report_hist(&res, o.hist_out, stderr))
		status = 1;
	load_result_fini(&res);
	return status;
}
