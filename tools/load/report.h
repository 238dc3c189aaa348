/* SPDX-License-Identifier: MIT */
/*
 * What sluice-load prints and writes after a run: the summary table, the
 * same as JSON, histogram files, and the plots (data files and a gnuplot
 * script, rendered when gnuplot is installed).  And the merge command,
 * which adds up histogram files from several runs or machines.
 */
#ifndef SLUICE_LOAD_REPORT_H
#define SLUICE_LOAD_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "tools/load/opts.h"
#include "tools/load/run.h"

/* load_report_passed() - no fatal error and, in verify mode, every key ok. */
bool load_report_passed(const struct load_opts *o, const struct load_result *r);

/**
 * load_report_knee() - for a ramp: the highest step that held, that is
 * sent at 95% of its rate or better with a p99 (of the most telling
 * latency measured) within --slo; -1 when none did or there is no ramp.
 */
int load_report_knee(const struct load_opts *o, const struct load_result *r);

void load_report_table(const struct load_opts *o, const struct load_result *r,
                       FILE *out);
void load_report_json(const struct load_opts *o, const struct load_result *r,
                      FILE *out);

/**
 * load_report_hist() - write each measured histogram to PREFIX-NAME.hdr.
 * Return: 0, or a negative errno value (a message went to @log).
 */
int load_report_hist(const struct load_result *r, const char *prefix,
                     FILE *log);

/**
 * load_report_plots() - write DIR/series.dat, percentiles-*.dat,
 * steps.dat and plots.gp, and run gnuplot on the script if it is
 * installed; say on @log what was written, or why not.
 * Return: 0, or a negative errno value.
 */
int load_report_plots(const struct load_opts *o, const struct load_result *r,
                      const char *dir, FILE *log);

/* load_merge() - "sluice-load merge": returns the exit status. */
int load_merge(const struct load_opts *o);

#endif /* SLUICE_LOAD_REPORT_H */
