/*
 * test_report.c - the recipients directory parser, PN keys, back-off, mail header encoding,
 * HTML escaping, host:port parsing, and report_create / list / cancel on a real state.sqlite.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report/directory.h"
#include "report/mllp.h"
#include "report/outbox.h"
#include "report/report.h"
#include "report/smtp.h"
#include "t.h"

static char *key(const char *pn)
{
    static char out[324];
    report_pn_key(pn, out, sizeof out);
    return out;
}

static void test_directory(void)
{
    CHECK_EQ_STR(key("DUPONT^JEAN"), "dupont^jean");
    CHECK_EQ_STR(key("Dupont^Jean^^^"), "dupont^jean");
    CHECK_EQ_STR(key(" dupont ^ jean "), "dupont^jean");
    CHECK_EQ_STR(key("DUPONT^^MARIE"), "dupont^^marie");
    CHECK_EQ_STR(key("DUPONT^JEAN=ideo^graphic"), "dupont^jean");
    CHECK_EQ_STR(key("^^^"), "");

    const char text[] = "# directory\n"
                        "[DUPONT^JEAN]   # comment after the header\n"
                        "name = Dr Jean Dupont\n"
                        "email = jean@cab.example\n"
                        "hl7 = ris.example:2575\n"
                        "hl7_application = GPAPP\n"
                        "hl7_facility = CAB # trailing comment\n"
                        "\n"
                        "[Martin^Anne^^]\n"
                        "email=anne@x.example\n";
    report_directory *d = NULL;
    rs_err err;
    CHECK_EQ_INT(report_dir_parse(text, sizeof text - 1, &d, &err), RS_OK);
    CHECK_EQ_INT(report_dir_count(d), 2);
    report_recipient r;
    CHECK_EQ_INT(report_dir_lookup(d, "dupont^jean^^^", &r), RS_OK);
    CHECK_EQ_STR(r.name, "Dr Jean Dupont");
    CHECK_EQ_STR(r.email, "jean@cab.example");
    CHECK_EQ_STR(r.hl7, "ris.example:2575");
    CHECK_EQ_STR(r.hl7_app, "GPAPP");
    CHECK_EQ_STR(r.hl7_facility, "CAB");
    CHECK_EQ_INT(report_dir_lookup(d, "MARTIN^ANNE", &r), RS_OK);
    CHECK_EQ_STR(r.email, "anne@x.example");
    CHECK_EQ_INT(report_dir_lookup(d, "MARTIN^PAUL", &r), RS_ENOTFOUND);
    CHECK_EQ_INT(report_dir_lookup(d, "", &r), RS_ENOTFOUND);
    report_dir_free(d);

    const char *bad[] = {"email = a@b\n",                       /* outside a block */
                         "[A]\nfoo = bar\nemail = a@b\n",      /* unknown key */
                         "[A]\nname = only a name\n",           /* no channel */
                         "[A\nemail = a@b\n",                   /* unclosed header */
                         "[]\nemail = a@b\n",                   /* empty name */
                         "[A]\nemail a@b\n"};                   /* no '=' */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        d = NULL;
        CHECK(report_dir_parse(bad[i], strlen(bad[i]), &d, &err) != RS_OK);
        CHECK(d == NULL);
    }
    /* value too long for its field */
    char big[600] = "[A]\nname = ";
    memset(big + strlen(big), 'x', 300);
    strcat(big, "\nemail = a@b\n");
    CHECK_EQ_INT(report_dir_parse(big, strlen(big), &d, &err), RS_ELIMIT);
    CHECK(strstr(err.msg, "line 2") != NULL);
}

static void test_helpers(void)
{
    CHECK_EQ_INT(report_outbox_backoff_ms(1000, 60000, 1, 0.999999), 999);
    CHECK_EQ_INT(report_outbox_backoff_ms(1000, 60000, 1, 0.0), 500);
    CHECK_EQ_INT(report_outbox_backoff_ms(1000, 60000, 3, 0.0), 2000);
    CHECK_EQ_INT(report_outbox_backoff_ms(1000, 60000, 30, 0.0), 30000);   /* capped, then jittered */
    CHECK_EQ_INT(report_outbox_backoff_ms(1000, 60000, 1000000, 0.99999999), 59999);

    char h[64], p[8];
    CHECK_EQ_INT(report_hostport_parse("ris.example:2575", h, sizeof h, p, sizeof p), RS_OK);
    CHECK_EQ_STR(h, "ris.example");
    CHECK_EQ_STR(p, "2575");
    CHECK_EQ_INT(report_hostport_parse("[::1]:104", h, sizeof h, p, sizeof p), RS_OK);
    CHECK_EQ_STR(h, "::1");
    CHECK_EQ_INT(report_hostport_parse("nohost", h, sizeof h, p, sizeof p), RS_EINVAL);
    CHECK_EQ_INT(report_hostport_parse(":99", h, sizeof h, p, sizeof p), RS_EINVAL);
    CHECK_EQ_INT(report_hostport_parse("h:9x", h, sizeof h, p, sizeof p), RS_EINVAL);

    rs_buf b = RS_BUF_INIT;
    report_html_escape(&b, "<a href=\"x\">O'B & co</a>\nnext");
    CHECK_EQ_STR((char *)b.p, "&lt;a href=&quot;x&quot;&gt;O&#39;B &amp; co&lt;/a&gt;<br>\nnext");
    rs_buf_reset(&b);
    report_mail_encode_header(&b, "Plain subject", 9);
    CHECK_EQ_STR((char *)b.p, "Plain subject");
    rs_buf_reset(&b);
    report_mail_encode_header(&b, "Jürgen", 9);
    CHECK_EQ_STR((char *)b.p, "=?UTF-8?B?SsO8cmdlbg==?=");
    rs_buf_reset(&b);
    /* 60 two-byte characters: three encoded words, none splitting a character, folded */
    char longs[121];
    for (int i = 0; i < 60; i++)
        memcpy(longs + 2 * i, "\xc3\xa9", 2);
    longs[120] = 0;
    report_mail_encode_header(&b, longs, 9);
    CHECK(strstr((char *)b.p, "?=\r\n =?UTF-8?B?") != NULL);
    int words = 0;
    for (char *q = (char *)b.p; (q = strstr(q, "=?UTF-8?B?")); q++)
        words++;
    CHECK_EQ_INT(words, 3);
    rs_buf_free(&b);

    char disp[128];
    report_pn_display("DUPONT^Jean^Marie^Dr^Jr", disp, sizeof disp);
    CHECK_EQ_STR(disp, "Dr Jean Marie DUPONT Jr");
    report_pn_display("DOE^Jane", disp, sizeof disp);
    CHECK_EQ_STR(disp, "Jane DOE");
    report_pn_display("", disp, sizeof disp);
    CHECK_EQ_STR(disp, "");

    /* the mail builder refuses header injection and non-http links */
    report_mail m = {.from = "r@x.example", .to = "a@b.example\r\nBcc: evil@x", .patient_name = "A^B", .text = "t",
                     .link_url = "https://h/s/T", .message_id = "ID1", .date_s = 0};
    rs_err err;
    CHECK_EQ_INT(report_mail_build(&m, &b, &err), RS_EINVAL);
    m.to = "a@b.example";
    m.link_url = "javascript:alert(1)";
    CHECK_EQ_INT(report_mail_build(&m, &b, &err), RS_EINVAL);
    m.link_url = "https://h/s/T";
    m.to_name = "Dr \"Quote\"";
    rs_buf_reset(&b);
    CHECK_EQ_INT(report_mail_build(&m, &b, &err), RS_OK);
    CHECK(strstr((char *)b.p, "To: \"Dr \\\"Quote\\\"\" <a@b.example>\r\n") != NULL);
    CHECK(strstr((char *)b.p, "Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n") != NULL);
    CHECK(strstr((char *)b.p, "Message-ID: <ID1@x.example>\r\n") != NULL);
    /* a short study date (imported DICOM) is not read past its end (found by fuzz_report) */
    char *shortdate = strdup("20");
    m.study_date = shortdate;
    rs_buf_reset(&b);
    CHECK_EQ_INT(report_mail_build(&m, &b, &err), RS_OK);
    CHECK(strstr((char *)b.p, "UGF0aWVudDogQiBBCkRhdGU6IDIwCgp0") != NULL); /* base64 of "Patient: B A\nDate: 20\n\nt" */
    m.study_date = "20261204";
    rs_buf_reset(&b);
    CHECK_EQ_INT(report_mail_build(&m, &b, &err), RS_OK);
    CHECK(strstr((char *)b.p, "UGF0aWVudDogQiBBCkRhdGU6IDIwMjYtMTItMDQK") != NULL); /* "Patient: B A\nDate: 2026-12-04\n" */
    free(shortdate);
    /* a 980-byte ASCII name goes as folded encoded words, an over-long address is refused: no
       header line over RFC 5322's 998 bytes (found by fuzz_report) */
    char longname[1201], longaddr[301];
    memset(longname, 'N', 980);
    longname[980] = 0;
    m.to_name = longname;
    rs_buf_reset(&b);
    CHECK_EQ_INT(report_mail_build(&m, &b, &err), RS_OK);
    CHECK(strstr((char *)b.p, "To: =?UTF-8?B?") != NULL);
    size_t longest = 0;
    for (char *l = (char *)b.p, *e; (e = strstr(l, "\r\n")); l = e + 2)
        longest = (size_t)(e - l) > longest ? (size_t)(e - l) : longest;
    CHECK(longest <= 998);
    memset(longaddr, 'a', 300);
    memcpy(longaddr + 290, "@b.example", 11);
    m.to = longaddr;
    CHECK_EQ_INT(report_mail_build(&m, &b, &err), RS_EINVAL);
    m.to = "a@b.example";
    rs_buf_free(&b);
}

static void test_db(void)
{
    char dir[] = "/tmp/rs-test-report-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    report_db *db = NULL;
    rs_err err;
    CHECK_EQ_INT(report_db_open(dir, &db, &err), RS_OK);
    report_input in = {.study_uid = "1.2.3", .text = "Normal knee.\n\n", .author = "Dr R",
                       .link_url = "https://h/s/TOKEN", .share_id = "sh1", .link_needs_code = 1,
                       .access_code = "SECRET"};
    strcpy(in.recipient.name, "Dr A");
    strcpy(in.recipient.email, "a@b.example");
    strcpy(in.recipient.hl7, "127.0.0.1:2575");
    int64_t id = 0;
    CHECK_EQ_INT(report_create(db, &in, &id, &err), RS_OK);
    CHECK(id > 0);
    rs_buf b = RS_BUF_INIT;
    CHECK_EQ_INT(report_get_text(db, id, &b, &err), RS_OK);
    CHECK_EQ_STR((char *)b.p, "Normal knee.\n\nThe images of this examination can be viewed online at:\n"
                              "https://h/s/TOKEN\nAn access code, sent to you separately, is needed to open them.\n");
    int64_t pending = 0;
    CHECK_EQ_INT(report_pending_count(db, id, &pending, &err), RS_OK);
    CHECK_EQ_INT(pending, 2);
    rs_buf_reset(&b);
    CHECK_EQ_INT(report_delivery_list(db, "1.2.3", 0, &b, &err), RS_OK);
    CHECK(strstr((char *)b.p, "\"channel\":\"email\"") && strstr((char *)b.p, "\"channel\":\"hl7\""));
    CHECK(strstr((char *)b.p, "TOKEN") == NULL);   /* the list never shows the link */
    /* the viewer's report: as written (no link sentence, no token), author, date */
    rs_buf_reset(&b);
    CHECK_EQ_INT(report_share_json(db, "sh1", &b, &err), RS_OK);
    CHECK(strncmp((char *)b.p, "{\"text\":\"Normal knee.", 21) == 0);
    CHECK(strstr((char *)b.p, "\"author\":\"Dr R\"") && strstr((char *)b.p, "\"recipient\":\"Dr A\""));
    CHECK(strstr((char *)b.p, "TOKEN") == NULL && strstr((char *)b.p, "viewed online") == NULL);
    const char *day = strstr((char *)b.p, "\"date\":\"");
    CHECK(day && strspn(day + 8, "0123456789") == 8 && day[16] == '"');
    rs_buf_reset(&b);
    CHECK_EQ_INT(report_share_json(db, "other", &b, &err), RS_ENOTFOUND);
    CHECK_EQ_INT(b.len, 0);
    rs_buf_reset(&b);
    CHECK_EQ_INT(report_delivery_list(db, "9.9.9", 0, &b, &err), RS_OK);
    CHECK_EQ_STR((char *)b.p, "[]");
    CHECK_EQ_INT(report_delivery_cancel(db, 1, &err), RS_OK);
    CHECK_EQ_INT(report_delivery_cancel(db, 1, &err), RS_ENOTFOUND);
    CHECK_EQ_INT(report_pending_count(db, 0, &pending, &err), RS_OK);
    CHECK_EQ_INT(pending, 1);

    /* refusals: the access code in the text or link, no channel, header injection, no link */
    report_input bad = in;
    bad.text = "the code is SECRET";
    CHECK_EQ_INT(report_create(db, &bad, NULL, &err), RS_EINVAL);
    bad = in;
    bad.link_url = "https://h/s/TOKEN?code=SECRET";
    CHECK_EQ_INT(report_create(db, &bad, NULL, &err), RS_EINVAL);
    bad = in;
    bad.recipient.email[0] = bad.recipient.hl7[0] = 0;
    CHECK_EQ_INT(report_create(db, &bad, NULL, &err), RS_EINVAL);
    bad = in;
    strcpy(bad.recipient.name, "x\r\nBcc: e@x");
    CHECK_EQ_INT(report_create(db, &bad, NULL, &err), RS_EINVAL);
    bad = in;
    strcpy(bad.recipient.email, "a b@c");
    CHECK_EQ_INT(report_create(db, &bad, NULL, &err), RS_EINVAL);
    bad = in;
    bad.link_url = "";
    CHECK_EQ_INT(report_create(db, &bad, NULL, &err), RS_EINVAL);
    CHECK_EQ_INT(report_pending_count(db, 0, &pending, &err), RS_OK);
    CHECK_EQ_INT(pending, 1);   /* nothing half-stored */

    rs_buf_reset(&b);
    report_json_str(&b, "a\"b\\c\n</script>\x01");
    CHECK_EQ_STR((char *)b.p, "\"a\\\"b\\\\c\\n\\u003c/script>\\u0001\"");
    rs_buf_free(&b);
    report_db_close(db);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK_EQ_INT(system(cmd), 0);
}

int main(void)
{
    test_directory();
    test_helpers();
    test_db();
    return t_done();
}
