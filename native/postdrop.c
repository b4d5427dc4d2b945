/*
 * postdrop.c — sealpost's setgid maildrop writer: what Postfix's postdrop(1)
 * does for `sendmail` run by a user who may not write the queue. Installed by
 * `sealpost set-permissions` as $daemon_directory/postdrop, owner root, group
 * setgid_group, mode 2755; maildrop/ is mode 1730 mail_owner:setgid_group, so
 * only this program (and root) may add files there and nobody may list them.
 *
 * Usage: postdrop [-c config_dir] [-N sendmail] < queue-file
 *
 * Contract: standard input is one queue file, as sealpost's sendmail encodes
 * it. The helper reads queue_directory (and enable_long_queue_ids,
 * message_size_limit) from the configuration directory's main.cf — a
 * non-default directory only when authorized (mailconf.h) — and then:
 * creates `maildrop/tmp.PID.N` with O_EXCL and mode 0444, copies the input,
 * fsyncs it, names it by its queue ID (creation time and inode, as
 * queue-id.ts and Postfix's mail_queue.c do) with link(2), which never
 * replaces a file, removes the temporary name and prints the queue ID. The
 * directory is not fsynced — a member of setgid_group may not open maildrop/
 * for reading (mode 1730) — so the new name is as durable as Postfix's
 * postdrop makes it: the file's data is on disk, its name is committed with
 * the file system's next journal commit. Any failure removes what it made and exits 75
 * (EX_TEMPFAIL) with one `fatal:` line. It does not validate the content:
 * pickup parses every maildrop file as untrusted input and moves what does
 * not parse to corrupt/.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include "mailconf.h"

static char tmp_name[64];

static void cleanup_fatal(const char *what)
{
    int saved = errno;
    if (tmp_name[0])
        unlink(tmp_name);
    fatal(EX_TEMPFAIL, "queue file write error: %s: %s", what, strerror(saved));
}

/* safe_ultostr(): digits, then consonants (queue-id.ts SAFE_ALPHABET). */
static void safe_encode(unsigned long long v, unsigned base, int pad, char *out)
{
    static const char alphabet[] = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz";
    char buf[64];
    int n = 0;
    do {
        buf[n++] = alphabet[v % base];
        v /= base;
    } while (v);
    while (n < pad)
        buf[n++] = '0';
    for (int i = 0; i < n; i++)
        out[i] = buf[n - 1 - i];
    out[n] = 0;
}

static void queue_id(int long_ids, struct timeval *tv, unsigned long long ino, char *out)
{
    if (!long_ids) {
        sprintf(out, "%05X%llX", (unsigned) tv->tv_usec, ino);
        return;
    }
    safe_encode((unsigned long long) tv->tv_sec, 52, 6, out);
    safe_encode((unsigned long long) tv->tv_usec, 52, 4, out + strlen(out));
    strcat(out, "z");
    safe_encode(ino, 51, 0, out + strlen(out));
}

/* Copy standard input to fd, at most `limit` bytes (0: no limit). */
static void copy_input(int fd, unsigned long long limit)
{
    char buf[65536];
    unsigned long long total = 0;
    ssize_t n;
    while ((n = read(0, buf, sizeof(buf))) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            cleanup_fatal("read standard input");
        }
        total += (unsigned long long) n;
        if (limit > 0 && total > limit) {
            unlink(tmp_name);
            fatal(EX_DATAERR, "Message file too big");
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(fd, buf + off, (size_t) (n - off));
            if (w < 0 && errno != EINTR)
                cleanup_fatal(tmp_name);
            off += w > 0 ? w : 0;
        }
    }
}

int main(int argc, char **argv)
{
    char queue_dir[VALUE_MAX], long_ids[16], size[32], id[128];
    struct stat st;
    struct timeval tv;
    int fd;

    umask(022);
    prog = "postdrop";
    const char *dir = parse_args(argc, argv, "", 0);
    conf_plain(dir, "queue_directory", DEF_QUEUE_DIR, queue_dir, sizeof(queue_dir));
    conf_plain(dir, "enable_long_queue_ids", "no", long_ids, sizeof(long_ids));
    conf_plain(dir, "message_size_limit", "10240000", size, sizeof(size));
    if (queue_dir[0] != '/')
        fatal(EX_TEMPFAIL, "queue_directory = %s: not an absolute path", queue_dir);
    if (chdir(queue_dir) < 0 || chdir("maildrop") < 0)
        fatal(EX_TEMPFAIL, "chdir %s/maildrop: %s: run (as root): sealpost set-permissions", queue_dir, strerror(errno));
    for (int n = 0;; n++) {
        snprintf(tmp_name, sizeof(tmp_name), "tmp.%ld.%d", (long) getpid(), n);
        if ((fd = open(tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0444)) >= 0)
            break;
        if (errno != EEXIST || n > 100) {
            tmp_name[0] = 0;
            fatal(EX_TEMPFAIL, "queue file write error: create file %s/maildrop/tmp.%ld.%d: %s", queue_dir, (long) getpid(), n, strerror(errno));
        }
    }
    /* The envelope comes on top of message_size_limit: allow 1 MiB for it. */
    unsigned long long limit = strtoull(size, 0, 10);
    copy_input(fd, limit > 0 ? limit + (1u << 20) : 0);
    if (fsync(fd) < 0 || fstat(fd, &st) < 0 || close(fd) < 0)
        cleanup_fatal(tmp_name);
    gettimeofday(&tv, 0);
    for (int attempt = 0;; attempt++) {
        queue_id(strcmp(long_ids, "yes") == 0, &tv, (unsigned long long) st.st_ino, id);
        if (link(tmp_name, id) == 0)
            break;
        if (errno != EEXIST || attempt > 1000)
            cleanup_fatal(id);
        /* queue-id.ts uniqueId(): a clock that went back onto a reused inode's old name. */
        if (++tv.tv_usec >= 1000000) {
            tv.tv_usec = 0;
            tv.tv_sec++;
        }
    }
    unlink(tmp_name);
    tmp_name[0] = 0;
    printf("%s\n", id);
    return fflush(stdout) == 0 ? 0 : EX_TEMPFAIL;
}
