// ngtcp2 0.12 (Debian's libngtcp2-dev) with its GnuTLS crypto helper, and GnuTLS itself.
// ngtcp2's versioned entry points are function-like macros, which Swift cannot import: each
// wrapper below passes the struct versions of the headers this build compiled against.
#ifndef WEFT_CNGTCP2_SHIM_H
#define WEFT_CNGTCP2_SHIM_H

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <gnutls/crypto.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

static inline void weft_ngtcp2_settings_default(ngtcp2_settings *settings) {
    ngtcp2_settings_default(settings);
}

static inline void weft_ngtcp2_transport_params_default(ngtcp2_transport_params *params) {
    ngtcp2_transport_params_default(params);
}

static inline int weft_ngtcp2_conn_client_new(
    ngtcp2_conn **pconn, const ngtcp2_cid *dcid, const ngtcp2_cid *scid, const ngtcp2_path *path,
    const ngtcp2_callbacks *callbacks, const ngtcp2_settings *settings, const ngtcp2_transport_params *params,
    void *user_data) {
    return ngtcp2_conn_client_new(
        pconn, dcid, scid, path, NGTCP2_PROTO_VER_V1, callbacks, settings, params, NULL, user_data);
}

static inline int weft_ngtcp2_conn_server_new(
    ngtcp2_conn **pconn, const ngtcp2_cid *dcid, const ngtcp2_cid *scid, const ngtcp2_path *path,
    uint32_t version, const ngtcp2_callbacks *callbacks, const ngtcp2_settings *settings,
    const ngtcp2_transport_params *params, void *user_data) {
    return ngtcp2_conn_server_new(pconn, dcid, scid, path, version, callbacks, settings, params, NULL, user_data);
}

static inline int weft_ngtcp2_conn_read_pkt(
    ngtcp2_conn *conn, const ngtcp2_path *path, const uint8_t *pkt, size_t pktlen, ngtcp2_tstamp ts) {
    ngtcp2_pkt_info info = {0};
    return ngtcp2_conn_read_pkt(conn, path, &info, pkt, pktlen, ts);
}

static inline ngtcp2_ssize weft_ngtcp2_conn_writev_stream(
    ngtcp2_conn *conn, ngtcp2_path *path, uint8_t *dest, size_t destlen, ngtcp2_ssize *pdatalen, uint32_t flags,
    int64_t stream_id, const ngtcp2_vec *datav, size_t datavcnt, ngtcp2_tstamp ts) {
    // No packet info: ngtcp2 then leaves ECN alone (the socket sets no ECN marks), and the
    // same (absent) info is passed again after NGTCP2_ERR_WRITE_MORE, as it requires.
    return ngtcp2_conn_writev_stream(
        conn, path, NULL, dest, destlen, pdatalen, flags, stream_id, datav, datavcnt, ts);
}

static inline ngtcp2_ssize weft_ngtcp2_conn_write_connection_close(
    ngtcp2_conn *conn, ngtcp2_path *path, uint8_t *dest, size_t destlen, const ngtcp2_connection_close_error *ccerr,
    ngtcp2_tstamp ts) {
    return ngtcp2_conn_write_connection_close(conn, path, NULL, dest, destlen, ccerr, ts);
}

static inline void weft_ngtcp2_conn_get_conn_stat(ngtcp2_conn *conn, ngtcp2_conn_stat *stat) {
    ngtcp2_conn_get_conn_stat(conn, stat);
}

#endif
