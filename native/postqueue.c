/*
 * postqueue.c — sealpost's setgid queue-listing client: what Postfix's
 * setgid postqueue(1) does for `mailq` run by a user who may not read the
 * queue. Installed by `sealpost set-permissions` as
 * $daemon_directory/postqueue, owner root, group setgid_group, mode 2755;
 * the showq socket lives in public/ (mode 2710, mail_owner:setgid_group), so
 * only this program (and root and mail_owner) may reach it.
 *
 * Usage: postqueue [-c config_dir] [-N mailq] -p | -j
 *
 * Contract: reads queue_directory from the (authorized: mailconf.h)
 * configuration directory, connects to queue_directory/public/showq, sends
 * `compat` (-p) or `json` (-j) and copies the answer to standard output
 * byte for byte. When the daemon does not answer: Postfix's words,
 * `fatal: Queue report unavailable - mail system is down (Connect to the
 * sealpost showq service: REASON)`, exit 69 (EX_UNAVAILABLE); a permission
 * problem is not "down" (postqueue.c: exit 70 with `Connect to the ...`).
 */
#include <sys/socket.h>
#include <sys/un.h>
#include "mailconf.h"

static int connect_showq(const char *queue_dir)
{
    struct sockaddr_un sun;
    int fd;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/public/showq", queue_dir) >= (int) sizeof(sun.sun_path))
        fatal(EX_SOFTWARE, "queue_directory = %s: the path is too long for a socket", queue_dir);
    if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
        fatal(EX_SOFTWARE, "socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    char queue_dir[VALUE_MAX], mail_name[256], buf[65536];
    int mode = 0, fd;
    ssize_t n;

    prog = "postqueue";
    const char *dir = parse_args(argc, argv, "pj", &mode);
    if (mode == 0 || optind != argc)
        fatal(EX_USAGE, "usage: %s [-c config_dir] -p | -j", prog);
    conf_plain(dir, "queue_directory", DEF_QUEUE_DIR, queue_dir, sizeof(queue_dir));
    conf_plain(dir, "mail_name", "sealpost", mail_name, sizeof(mail_name));
    if ((fd = connect_showq(queue_dir)) < 0) {
        if (errno == EACCES || errno == EPERM)
            fatal(EX_SOFTWARE, "Connect to the %s showq service: %s", mail_name, strerror(errno));
        fatal(EX_UNAVAILABLE, "Queue report unavailable - mail system is down (Connect to the %s showq service: %s)", mail_name, strerror(errno));
    }
    const char *request = mode == 'j' ? "json\n" : "compat\n";
    if (write(fd, request, strlen(request)) < 0)
        fatal(EX_SOFTWARE, "write to the %s showq service: %s", mail_name, strerror(errno));
    while ((n = read(fd, buf, sizeof(buf))) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fatal(EX_SOFTWARE, "read from the %s showq service: %s", mail_name, strerror(errno));
        }
        if (fwrite(buf, 1, (size_t) n, stdout) != (size_t) n)
            fatal(EX_SOFTWARE, "write standard output: %s", strerror(errno));
    }
    return fflush(stdout) == 0 ? 0 : EX_SOFTWARE;
}
