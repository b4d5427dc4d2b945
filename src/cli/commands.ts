/**
 * commands.ts — the registry of sealpost's commands: name, one-line summary,
 * the help text `sealpost <command> --help` prints, and the module that runs
 * it (loaded lazily, so `sealpost postmap -q` does not load the daemon).
 *
 * Contract:
 * - Every command has a `usage` (its synopsis, first line `usage: ...`) and
 *   option lines; `helpText()` joins them. The Postfix-named tools show
 *   Postfix's synopsis (postmap(1), postconf(1) ... as sealpost supports them).
 * - `PROGRAM_NAMES` lists the names the one binary answers to by itself
 *   (argv[0] dispatch): the Postfix tools, `sendmail`/`mailq`/`newaliases`
 *   and `postfix`.
 * - `POSTFIX_SCRIPT_COMMANDS` are postfix(1)'s commands (postfix-script); the
 *   ones sealpost has are run, the others are refused by name.
 * - `suggest()` is the "did you mean" of a mistyped command: the closest
 *   names by Damerau-Levenshtein distance (at most 2, and less than half the
 *   word), or the commands that start with what was typed.
 *
 * Not here: option parsing (each command's module), the dispatch itself
 * (sealpost.ts).
 */
import type { CommandMain } from './context.ts';

type Loader = () => Promise<{ main: CommandMain }>;

export interface CommandEntry {
  readonly summary: string;
  /** Synopsis and option lines, printed by `sealpost <command> --help`. */
  readonly usage: readonly string[];
  readonly load: Loader;
}

const daemon: Loader = () => import('./daemon.ts');
const CONFIG = '  -c config_dir   the directory that holds main.cf and master.cf (default: $MAIL_CONFIG, else /etc/sealpost)';

function control(name: string, what: string): readonly string[] {
  return [`usage: sealpost [-c config_dir] ${name}`, `       sealpost ${name} [-c config_dir]`, '', what, '', CONFIG];
}

export const COMMANDS: Readonly<Record<string, CommandEntry>> = {
  postconf: {
    summary: 'print or edit main.cf/master.cf parameters (postconf(1))',
    usage: [
      'usage: postconf [-c config_dir] [-d (parameter defaults)] [-e (edit configuration)] [-f (fold lines)] [-h (no names)] [-m (map types)] [-M (master.cf)] [-n (non-default parameters)] [-v (verbose)] [-x (expand parameter values)] [-X (exclude)] [-# (comment-out)] [name...]',
      '',
      'Print the effective value of every parameter, or of the names given; edit main.cf with -e name=value, -X name, -# name.',
    ],
    load: () => import('./postconf.ts'),
  },
  postmap: {
    summary: 'build, query and dump lookup tables (postmap(1))',
    usage: [
      'usage: postmap [-bfFhimnNoprsuUvw] [-c config_dir] [-d key] [-q key] [map_type:]file...',
      '',
      'Build hash:, btree:, lmdb: or cdb: tables from their source files; -q key (or -q - for keys on stdin) queries,',
      '-s dumps, -d key deletes, -i adds entries from stdin. Any table type sealpost knows can be queried.',
    ],
    load: () => import('./postmap.ts'),
  },
  mailq: {
    summary: 'list the mail queue (same as postqueue -p)',
    usage: ['usage: mailq', '       sealpost mailq [-c config_dir]', '', 'List the queue in Postfix\'s layout: queue ID, size, arrival time, sender, recipients and why mail waits.'],
    load: () => import('./postqueue.ts'),
  },
  postqueue: {
    summary: 'list (-p, -j) or flush (-f, -i, -s) the mail queue (postqueue(1))',
    usage: [
      'usage: postqueue -f | postqueue -i queueid | postqueue -j | postqueue -p | postqueue -s site',
      '',
      '  -p          list the queue (as mailq)',
      '  -j          list the queue as JSON, one message per line',
      '  -f          ask the running daemon to deliver all queued mail now',
      '  -i queueid  ask the running daemon to deliver one message now',
      '  -s site     ask the running daemon to deliver the mail for one destination now',
      CONFIG,
    ],
    load: () => import('./postqueue.ts'),
  },
  postsuper: {
    summary: 'delete, hold, release, requeue or expire queued mail (postsuper(1))',
    usage: [
      'usage: postsuper [-c config_dir] [-d queue_id (delete)] [-e queue_id (expire)] [-f queue_id (expire and/or un-hold)] [-h queue_id (hold)] [-H queue_id (un-hold)] [-p (purge temporary files)] [-r queue_id (requeue)] [-s (structure fix)] [-S (redundant structure fix)][-v (verbose)] [queue...]',
      '',
      'A queue_id of ALL means every message; "-" reads queue IDs from standard input.',
    ],
    load: () => import('./postsuper.ts'),
  },
  postcat: {
    summary: 'show a queue file (postcat(1))',
    usage: ['usage: postcat [-b (body text)] [-c config_dir] [-e (envelope records)] [-h (header text)] [-q (access queue)] [-v] [file(s)...]'],
    load: () => import('./postcat.ts'),
  },
  sendmail: {
    summary: 'submit a message from standard input (sendmail(1))',
    usage: [
      'usage: sendmail [options] [recipient ...]',
      '',
      'Options as Postfix\'s sendmail(1): -t (recipients from the headers), -i / -oi (a lone "." does not end input),',
      '-f sender, -F full_name, -N dsn, -R full|hdrs, -V envid, -B 7BIT|8BITMIME, -O requiretls=yes|no, -O smtputf8=yes|no,',
      '-C config_file_or_dir, -bm (default), -bp (mailq), -bs (SMTP on stdin), -bi / -I (newaliases), -bd (start), -q (flush),',
      '-qR site, -qI queue_id. Sendmail options that Postfix ignores are ignored (-c, -m, -U, -G, -o7, -o8, -L, -h ...).',
      'The configuration directory: -C, or "sealpost -c config_dir sendmail ...", or $MAIL_CONFIG.',
    ],
    load: () => import('./sendmail.ts'),
  },
  start: { summary: 'start the mail system in the background', usage: control('start', 'Check the configuration, then start the mail system in the background; exit 0 once it listens.'), load: daemon },
  'start-fg': { summary: 'run the mail system in the foreground', usage: control('start-fg', 'Run the mail system in this process, logging to stdout when maillog_file is empty, until SIGTERM or SIGINT.'), load: daemon },
  stop: { summary: 'stop the mail system gracefully', usage: control('stop', 'Stop the running mail system gracefully and wait until it is gone.'), load: daemon },
  abort: { summary: 'stop the mail system at once', usage: control('abort', 'Stop the running mail system at once.'), load: daemon },
  reload: {
    summary: 're-read main.cf, master.cf and tables (a broken config is refused)',
    usage: control('reload', 'Check the new configuration and have the running mail system re-read it; a broken one is refused and the old one keeps running.'),
    load: daemon,
  },
  status: { summary: 'tell whether the mail system runs, and its PID', usage: control('status', 'Tell whether the mail system runs (exit 0) or not (exit 1).'), load: daemon },
  flush: { summary: 'attempt delivery of all queued mail (postqueue -f)', usage: control('flush', 'Ask the running mail system to deliver all queued mail now.'), load: daemon },
  check: {
    summary: 'validate the configuration, master.cf, tables and queue directory',
    usage: [
      'usage: sealpost [-c config_dir] [-v] check',
      '       sealpost check [-c config_dir] [-v]',
      '',
      'Validate main.cf, master.cf, every table the configuration names (TLS policy entries included), the TLS levels,',
      'the relayhost trap of smtp_tls_policy_maps, and the queue and data directories. Exit 1 on any error.',
      '',
      CONFIG,
      '  -v              also print a summary on stdout',
    ],
    load: daemon,
  },
  tls: {
    summary: 'tls explain RECIPIENT | tls report [--since 24h] | tls proof QUEUE_ID|MESSAGE_ID | tls sts list: TLS policy, posture, per-message evidence, the MTA-STS cache',
    usage: [
      'usage: sealpost tls explain [-c config_dir] [-n] [-s sender] recipient...',
      '       sealpost tls report [-c config_dir] [--since DURATION | --from TIME [--to TIME]] [--json] [--svg FILE]',
      '       sealpost tls proof [-c config_dir] [--json] queue_id|message_id',
      '       sealpost tls sts [-c config_dir] [-j] list | show domain | fetch domain | forget domain',
      '',
      'explain: for each recipient, the route, the next hop, every policy source and what it said (tables and keys,',
      '         the MTA-STS TXT record and policy, the TLSA records and whether the zone is signed), which one won, the',
      '         effective TLS level and the certificate names required. It looks DANE and MTA-STS up in DNS and over',
      '         HTTPS (never storing a policy); -n: no network (tables only).',
      'report:  per destination domain over a window, the share of mail sent with verified TLS (and by which',
      '         source), unverified TLS, plaintext, and TLS deferrals and bounces; text, JSON or an SVG picture.',
      'proof:   for one message, each recipient\'s delivery: host, address, policy and source, TLS version and',
      '         cipher, the server certificate\'s fingerprint and the name it matched.',
      'sts:     the MTA-STS policy cache: list it, show a domain\'s policy, fetch one now, forget one. While the daemon',
      '         runs, it acts on the daemon\'s own cache.',
    ],
    load: () => import('./tls.ts'),
  },
  qshape: {
    summary: 'the queue by domain and age, as qshape(1)',
    usage: [
      'usage: sealpost qshape [-s] [-p] [-m min_subdomains] [-l] [-b bucket_count] [-t bucket_time] [-w terminal_width]',
      '       [-N batch_msg_count] [-n batch_top_domains] [-c config_dir] [queue_name ...]',
    ],
    load: () => import('./qshape.ts'),
  },
  tlsrpt: {
    summary: 'show the TLS-RPT sessions recorded per policy domain; "tlsrpt send --now" sends the reports now',
    usage: [
      'usage: sealpost tlsrpt [-c config_dir] [--json]',
      '       sealpost tlsrpt [-c config_dir] send --now',
    ],
    load: () => import('./tlsrpt.ts'),
  },
  'tls-finger': {
    summary: 'probe a destination\'s SMTP servers: STARTTLS, certificates, verdict per TLS level (posttls-finger(1))',
    usage: [
      'usage: sealpost tls-finger [-cCv] [-t conn_tmout] [-T cmd_tmout] [-a any|ipv4|ipv6] [-h host_lookup] [-l level] [-d mdalg]',
      '       [-g grade] [-p protocols] [-A tafile] [-F CAfile.pem] [-P CApath/] [-s servername]',
      '       [ [-H chainfiles] | [-k certfile [-K keyfile]] ] [-o name=value] destination [match ...]',
      '',
      'Options have posttls-finger(1)\'s letters. destination: domain, domain:port, [host] or [host]:port.',
      'Not supported (refused): -f, -L, -m, -M, -r, -R, -S, -w, -x, -X.',
      'The configuration directory: "sealpost -c config_dir tls-finger ..." or $MAIL_CONFIG.',
    ],
    load: () => import('./tls-finger.ts'),
  },
  demo: {
    summary: 'play the postmaster\'s story on loopback: three receivers, a policy table, a narrated transcript',
    usage: ['usage: sealpost demo [-k]', '', '  -k   keep the demo\'s temporary directory and print its path'],
    load: () => import('./demo.ts'),
  },
  saslpasswd: {
    summary: 'add, delete or list SMTP AUTH users (passwords stored hashed)',
    usage: ['usage: sealpost saslpasswd [-c config_dir] add user | delete user | list', '', 'add reads the password from the first line of standard input.'],
    load: () => import('./saslpasswd.ts'),
  },
  'set-permissions': {
    summary: 'create the mail_owner account, the queue directories and the setgid sendmail/mailq helpers (run as root)',
    usage: [
      'usage: sealpost set-permissions [-c config_dir]',
      '',
      'As root: create the setgid_group and mail_owner accounts when missing, give the queue and data directories',
      'Postfix\'s owners and modes, and compile the setgid postdrop and postqueue helpers into $daemon_directory.',
    ],
    load: () => import('./set-permissions.ts'),
  },
  version: {
    summary: 'print sealpost\'s version (also -V, --version)',
    usage: ['usage: sealpost version', '       sealpost -V | --version'],
    load: () => import('./version.ts'),
  },
};

/** Program names that select a command by themselves (argv[0] dispatch). */
export const PROGRAM_NAMES: ReadonlySet<string> = new Set(['postconf', 'postmap', 'mailq', 'postqueue', 'postsuper', 'postcat', 'sendmail', 'newaliases', 'postfix']);

/** postfix(1) commands (postfix-script), in the order Postfix's usage line lists them. */
export const POSTFIX_SCRIPT_COMMANDS: readonly string[] = [
  'start',
  'start-fg',
  'stop',
  'reload',
  'abort',
  'flush',
  'check',
  'status',
  'set-permissions',
  'upgrade-configuration',
  'logrotate',
  'post-install',
  'tls',
  'non-bdb',
  'drain',
  'quick-stop',
];

/** The help text of one command. */
export function helpText(name: string): string {
  const entry = COMMANDS[name];
  if (!entry) return '';
  return [...entry.usage, ''].join('\n');
}

/** The list `sealpost help` prints. */
export function commandList(): string {
  const lines = [
    'usage: sealpost [-c config_dir] [-Dv] command [options]',
    '       sealpost command --help',
    '       sealpost -V | --version',
    '',
    'commands:',
  ];
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(12)} ${c.summary}`);
  lines.push('', 'Invoked as postfix, sendmail, mailq, newaliases, postconf, postmap, postqueue, postsuper or postcat');
  lines.push('(a symbolic link to this program), sealpost behaves as that Postfix command.');
  return lines.join('\n') + '\n';
}

/** Damerau-Levenshtein (optimal string alignment) distance. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The names closest to `typed` (did you mean ...), best first; empty when nothing is close. */
export function suggest(typed: string, names: readonly string[]): string[] {
  const t = typed.toLowerCase();
  if (t === '') return [];
  const scored = names.map((n) => ({ n, d: editDistance(t, n) })).filter(({ n, d }) => d <= 2 && d * 2 < Math.max(t.length, n.length));
  if (scored.length > 0) {
    const best = Math.min(...scored.map((s) => s.d));
    return scored.filter((s) => s.d === best).map((s) => s.n);
  }
  if (t.length >= 2) return names.filter((n) => n.startsWith(t));
  return [];
}

/** ` (did you mean "start"?)`-style text, or ''. */
export function didYouMean(typed: string, names: readonly string[]): string {
  const s = suggest(typed, names);
  if (s.length === 0) return '';
  return ` (did you mean ${s.map((n) => `"${n}"`).join(' or ')}?)`;
}
