/*
 * icu-ref.c — the reference for test/golden/idna/icu72.tsv: Postfix's midna_domain_to_ascii()
 * (ICU uidna_openUTS46(UIDNA_NONTRANSITIONAL_TO_ASCII), then valid_hostname()) and ICU's
 * ToUnicode, one input name per line on stdin. Written for sealpost from the semantics of
 * Postfix's util/midna_domain.c and util/valid_hostname.c.
 *
 *     gcc -O icu-ref.c -o icu-ref -licuuc && ./icu-ref < names.txt
 *
 * Output: two lines per name: the A-label form or `!reason`, then `U ` and the U-label form.
 */
#include <stdio.h>
#include <string.h>
#include <ctype.h>
#include <unicode/uidna.h>
static int valid_hostname(const char *name) {
  const char *cp; int label_length = 0, label_count = 0, non_numeric = 0, ch;
  if (*name == 0) return 0;
  for (cp = name; (ch = *(unsigned char *) cp) != 0; cp++) {
    if (isalnum(ch) || ch == '_') { if (label_length == 0) label_count++; label_length++; if (label_length > 63) return 0; if (!isdigit(ch)) non_numeric = 1; }
    else if (ch == '.') { if (label_length == 0 || cp[1] == 0) return 0; label_length = 0; }
    else if (ch == '-') { non_numeric = 1; label_length++; if (label_length == 1 || cp[1] == 0 || cp[1] == '.') return 0; }
    else return 0;
  }
  if (non_numeric == 0) return 0;
  if (cp - name > 255) return 0;
  return 1;
}
int main(void) {
  char line[2048];
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\n")] = 0;
    UErrorCode e = U_ZERO_ERROR; UIDNAInfo info = UIDNA_INFO_INITIALIZER; char buf[1024];
    UIDNA *idna = uidna_openUTS46(UIDNA_NONTRANSITIONAL_TO_ASCII, &e);
    int n = uidna_nameToASCII_UTF8(idna, line, strlen(line), buf, sizeof buf - 1, &info, &e);
    uidna_close(idna);
    if (U_SUCCESS(e) && info.errors == 0 && n > 0) { buf[n] = 0; if (valid_hostname(buf)) printf("%s\n", buf); else printf("!hostname\n"); }
    else printf("!%s 0x%x\n", U_FAILURE(e) ? u_errorName(e) : "idna", info.errors);
    /* to unicode */
    e = U_ZERO_ERROR; UIDNAInfo info2 = UIDNA_INFO_INITIALIZER;
    idna = uidna_openUTS46(UIDNA_NONTRANSITIONAL_TO_UNICODE, &e);
    n = uidna_nameToUnicodeUTF8(idna, line, strlen(line), buf, sizeof buf - 1, &info2, &e);
    uidna_close(idna);
    if (U_SUCCESS(e) && info2.errors == 0 && n > 0) { buf[n] = 0; printf("U %s\n", buf); } else printf("U !0x%x\n", info2.errors);
  }
  return 0;
}
