/* dimse.c - DIMSE command sets <-> struct (see dimse.h). */
#include "dimse.h"

#include <stdio.h>
#include <string.h>

#include "../dicom/reader.h"
#include "../dicom/writer.h"

#define C(e) DCM_TAG(0x0000, e)

static int put_u16(dcm_ds *ds, uint32_t tag, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    return dcm_ds_set_bytes(ds, tag, DCM_VR_US, b, 2);
}

static int put_str(dcm_ds *ds, uint32_t tag, uint16_t vr, const char *s)
{
    return s[0] ? dcm_ds_set_str(ds, tag, vr, s) : RS_OK;
}

int dimse_encode(const dimse_cmd *c, rs_buf *out, rs_err *err)
{
    dcm_file *f = dcm_file_new(1u << 20);
    if (!f)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    dcm_ds *ds = f->ds;
    static const uint8_t zero[4];
    int is_rsp = (c->command & 0x8000) != 0;
    int rc = dcm_ds_set_bytes(ds, C(0x0000), DCM_VR_UL, zero, 4);
    if (rc == RS_OK)
        rc = put_str(ds, C(0x0002), DCM_VR_UI, c->affected_sop_class);
    if (rc == RS_OK)
        rc = put_str(ds, C(0x0003), DCM_VR_UI, c->requested_sop_class);
    if (rc == RS_OK)
        rc = put_u16(ds, C(0x0100), c->command);
    if (rc == RS_OK && !is_rsp)
        rc = put_u16(ds, C(0x0110), c->message_id);
    if (rc == RS_OK && is_rsp)
        rc = put_u16(ds, C(0x0120), c->responded_id);
    if (rc == RS_OK && c->move_destination[0])
        rc = put_str(ds, C(0x0600), DCM_VR_AE, c->move_destination);
    if (rc == RS_OK && !is_rsp && c->command != DIMSE_C_CANCEL_RQ && c->command != DIMSE_C_ECHO_RQ)
        rc = put_u16(ds, C(0x0700), c->priority);
    if (rc == RS_OK)
        rc = put_u16(ds, C(0x0800), c->data_set_type);
    if (rc == RS_OK && is_rsp)
        rc = put_u16(ds, C(0x0900), c->status);
    if (rc == RS_OK && c->offending_element) {
        uint8_t b[4] = {(uint8_t)(c->offending_element >> 16), (uint8_t)(c->offending_element >> 24),
                        (uint8_t)c->offending_element, (uint8_t)(c->offending_element >> 8)};
        rc = dcm_ds_set_bytes(ds, C(0x0901), DCM_VR_AT, b, 4);
    }
    if (rc == RS_OK)
        rc = put_str(ds, C(0x0902), DCM_VR_LO, c->error_comment);
    if (rc == RS_OK)
        rc = put_str(ds, C(0x1000), DCM_VR_UI, c->affected_sop_instance);
    if (rc == RS_OK && c->has_counts) {
        rc = put_u16(ds, C(0x1020), c->remaining);
        if (rc == RS_OK)
            rc = put_u16(ds, C(0x1021), c->completed);
        if (rc == RS_OK)
            rc = put_u16(ds, C(0x1022), c->failed);
        if (rc == RS_OK)
            rc = put_u16(ds, C(0x1023), c->warning);
    }
    if (rc == RS_OK && c->has_move_originator) {
        rc = put_str(ds, C(0x1030), DCM_VR_AE, c->move_originator_ae);
        if (rc == RS_OK)
            rc = put_u16(ds, C(0x1031), c->move_originator_id);
    }
    if (rc) {
        dcm_file_free(f);
        return rs_err_set(err, rc, "cannot build the command set");
    }
    dcm_write_opts wo = {.ts = dcm_ts_implicit_le(), .no_meta = 1};
    rc = dcm_write(f, &wo, out, err);
    dcm_file_free(f);
    return rc;
}

static void get_str(const dcm_ds *ds, uint32_t tag, char *out, size_t cap)
{
    if (dcm_ds_get_str(ds, tag, 0, out, cap) < 0)
        out[0] = 0;
}

static uint16_t get_u16(const dcm_ds *ds, uint32_t tag, uint8_t *present)
{
    int64_t v = 0;
    int ok = dcm_ds_get_i64(ds, tag, 0, &v) == RS_OK;
    if (present)
        *present = (uint8_t)ok;
    return ok ? (uint16_t)v : 0;
}

int dimse_decode(const uint8_t *p, size_t n, dimse_cmd *c, rs_err *err)
{
    memset(c, 0, sizeof *c);
    dcm_file *f = NULL;
    dcm_read_opts ro = {.max_memory = 4u << 20, .max_value = 1u << 20, .max_depth = 4, .strict = 1};
    int rc = dcm_read_mem(p, n, &ro, &f, err);
    if (rc)
        return rc;
    const dcm_ds *ds = f->ds;
    uint8_t has_cmd = 0;
    c->command = get_u16(ds, C(0x0100), &has_cmd);
    if (!has_cmd || ds->n == 0 || DCM_TAG_GROUP(ds->e[ds->n - 1].tag) != 0x0000) {
        dcm_file_free(f);
        return rs_err_set(err, RS_EFORMAT, "not a DIMSE command set (no Command Field, or elements outside group 0000)");
    }
    c->message_id = get_u16(ds, C(0x0110), NULL);
    c->responded_id = get_u16(ds, C(0x0120), NULL);
    c->priority = get_u16(ds, C(0x0700), NULL);
    uint8_t has_dst = 0;
    c->data_set_type = get_u16(ds, C(0x0800), &has_dst);
    if (!has_dst)
        c->data_set_type = DIMSE_NO_DATASET;
    c->status = get_u16(ds, C(0x0900), &c->has_status);
    get_str(ds, C(0x0002), c->affected_sop_class, sizeof c->affected_sop_class);
    get_str(ds, C(0x0003), c->requested_sop_class, sizeof c->requested_sop_class);
    get_str(ds, C(0x1000), c->affected_sop_instance, sizeof c->affected_sop_instance);
    get_str(ds, C(0x0600), c->move_destination, sizeof c->move_destination);
    get_str(ds, C(0x0902), c->error_comment, sizeof c->error_comment);
    get_str(ds, C(0x1030), c->move_originator_ae, sizeof c->move_originator_ae);
    c->move_originator_id = get_u16(ds, C(0x1031), &c->has_move_originator);
    c->remaining = get_u16(ds, C(0x1020), &c->has_counts);
    c->completed = get_u16(ds, C(0x1021), NULL);
    c->failed = get_u16(ds, C(0x1022), NULL);
    c->warning = get_u16(ds, C(0x1023), NULL);
    dcm_file_free(f);
    return RS_OK;
}

const char *dimse_command_str(uint16_t command)
{
    switch (command) {
    case DIMSE_C_STORE_RQ: return "C-STORE-RQ";
    case DIMSE_C_STORE_RSP: return "C-STORE-RSP";
    case DIMSE_C_GET_RQ: return "C-GET-RQ";
    case DIMSE_C_GET_RSP: return "C-GET-RSP";
    case DIMSE_C_FIND_RQ: return "C-FIND-RQ";
    case DIMSE_C_FIND_RSP: return "C-FIND-RSP";
    case DIMSE_C_MOVE_RQ: return "C-MOVE-RQ";
    case DIMSE_C_MOVE_RSP: return "C-MOVE-RSP";
    case DIMSE_C_ECHO_RQ: return "C-ECHO-RQ";
    case DIMSE_C_ECHO_RSP: return "C-ECHO-RSP";
    case DIMSE_C_CANCEL_RQ: return "C-CANCEL-RQ";
    default: return "unknown command";
    }
}

const char *dimse_status_class(uint16_t s)
{
    if (s == DIMSE_SUCCESS)
        return "success";
    if (s == DIMSE_PENDING || s == DIMSE_PENDING_WARNING)
        return "pending";
    if (s == DIMSE_CANCEL)
        return "cancel";
    if (s == 0x0001 || (s & 0xF000) == 0xB000 || s == 0x0107 || s == 0x0116)
        return "warning";
    return "failure";
}
