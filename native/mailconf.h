/*
 * mailconf.h — what sealpost's two setgid helpers (postdrop.c, postqueue.c)
 * share: the message functions, a main.cf reader for plain values, and
 * Postfix's check that a non-default configuration directory is authorized
 * (mail_conf.c mail_conf_checkdir()).
 *
 * Contract: the helpers run setgid setgid_group on behalf of any local user,
 * so they trust nothing from the caller: no environment, only `-c dir` and a
 * program name from a fixed list. The configuration directory they trust is
 * DEF_CONFIG_DIR, compiled in by `sealpost set-permissions`; another one is
 * accepted from a non-root user only when DEF_CONFIG_DIR/main.cf lists it in
 * alternate_config_directories or multi_instance_directories, with Postfix's
 * messages otherwise.
 *
 * Not here: $name expansion (a value with `$` in the few parameters the
 * helpers read is refused with the fix), every other main.cf parameter.
 * Our own code, after Postfix's behaviour; no Postfix source is copied.
 */
#ifndef SEALPOST_MAILCONF_H
#define SEALPOST_MAILCONF_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef DEF_CONFIG_DIR
#define DEF_CONFIG_DIR "/etc/sealpost"
#endif
#define DEF_QUEUE_DIR "/var/spool/sealpost"
#define EX_USAGE 64
#define EX_DATAERR 65
#define EX_UNAVAILABLE 69
#define EX_SOFTWARE 70
#define EX_TEMPFAIL 75
#define VALUE_MAX 4096

static const char *prog = "postdrop";

static void say(const char *level, const char *fmt, va_list ap)
{
    fprintf(stderr, "%s: %s: ", prog, level);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

static void fatal(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say("fatal", fmt, ap);
    va_end(ap);
    exit(status);
}

static void error_msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say("error", fmt, ap);
    va_end(ap);
}

/* The program name for messages: only names sealpost's CLI uses. */
static void set_prog(const char *name)
{
    static const char *ok[] = {"sendmail", "postdrop", "mailq", "postqueue", 0};
    for (int i = 0; ok[i]; i++)
        if (strcmp(name, ok[i]) == 0)
            prog = ok[i];
}

/*
 * The last `name = value` in DIR/main.cf (postconf(5) syntax: # comments,
 * continuation lines that start with white space). 1 when found, 0 when not,
 * -1 when the file cannot be read (errno set).
 */
static int conf_lookup(const char *dir, const char *name, char *value, size_t size)
{
    char path[VALUE_MAX], line[VALUE_MAX], logical[VALUE_MAX * 4] = "";
    int found = 0;
    size_t nlen = strlen(name);
    FILE *fp;

    if (snprintf(path, sizeof(path), "%s/main.cf", dir) >= (int) sizeof(path))
        return (errno = ENAMETOOLONG, -1);
    if ((fp = fopen(path, "r")) == 0)
        return -1;
    for (int eof = 0; !eof;) {
        eof = fgets(line, sizeof(line), fp) == 0;
        if (!eof && (line[0] == ' ' || line[0] == '\t')) {
            if (logical[0] && strspn(line, " \t\r\n") != strlen(line) && line[strspn(line, " \t")] != '#')
                strncat(logical, line, sizeof(logical) - strlen(logical) - 1);
            continue;
        }
        /* A logical line is complete: is it ours? */
        char *p = logical + strspn(logical, " \t");
        if (strncmp(p, name, nlen) == 0 && strchr(" \t=", p[nlen])) {
            p += nlen + strspn(p + nlen, " \t");
            if (*p == '=') {
                p++;
                p += strspn(p, " \t\r\n");
                for (char *q = p; *q; q++)
                    if (*q == '\r' || *q == '\n' || *q == '\t')
                        *q = ' ';
                size_t len = strlen(p);
                while (len > 0 && p[len - 1] == ' ')
                    p[--len] = 0;
                snprintf(value, size, "%s", p);
                found = 1;
            }
        }
        logical[0] = 0;
        if (!eof && line[0] != '#')
            snprintf(logical, sizeof(logical), "%s", line);
    }
    fclose(fp);
    return found;
}

/* A plain value, or the default; `$` (expansion) is refused with the fix. */
static void conf_plain(const char *dir, const char *name, const char *def, char *value, size_t size)
{
    int r = conf_lookup(dir, name, value, size);
    if (r < 0 && errno != ENOENT)
        fatal(EX_TEMPFAIL, "open file %s/main.cf: %s", dir, strerror(errno));
    if (r <= 0)
        snprintf(value, size, "%s", def);
    if (strchr(value, '$'))
        fatal(EX_TEMPFAIL, "%s/main.cf: %s = %s: write the value without $name expansion for the setgid helpers", dir, name, value);
}

/* mail_conf_checkdir(): see the header. */
static void conf_check_dir(const char *dir)
{
    static const char *names[] = {"alternate_config_directories", "multi_instance_directories", 0};
    char value[VALUE_MAX];

    if (strcmp(dir, DEF_CONFIG_DIR) == 0 || getuid() == 0)
        return;
    for (int i = 0; names[i]; i++) {
        if (conf_lookup(DEF_CONFIG_DIR, names[i], value, sizeof(value)) <= 0)
            continue;
        for (char *tok = strtok(value, ", \t"); tok; tok = strtok(0, ", \t"))
            if (strcmp(tok, dir) == 0)
                return;
    }
    error_msg("unauthorized configuration directory name: %s", dir);
    fatal(1, "specify \"alternate_config_directories = %s\" or \"multi_instance_directories = %s\" in %s/main.cf", dir, dir, DEF_CONFIG_DIR);
}

/* -c dir and -N name; returns the configuration directory. Leaves optind after the options. */
static const char *parse_args(int argc, char **argv, const char *more, int *flag)
{
    const char *dir = DEF_CONFIG_DIR;
    char opts[16];
    int c;

    snprintf(opts, sizeof(opts), "c:N:%s", more);
    while ((c = getopt(argc, argv, opts)) != -1) {
        if (c == 'c')
            dir = optarg;
        else if (c == 'N')
            set_prog(optarg);
        else if (c != '?' && flag)
            *flag = c;
        else
            fatal(EX_USAGE, "usage: %s [-c config_dir] %s", prog, more[0] ? "-p | -j" : "");
    }
    if (dir[0] != '/')
        fatal(EX_USAGE, "-c %s: the configuration directory must be an absolute path", dir);
    conf_check_dir(dir);
    return dir;
}

#endif
