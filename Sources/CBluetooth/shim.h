#ifndef WEFT_CBLUETOOTH_SHIM_H
#define WEFT_CBLUETOOTH_SHIM_H
// What weft uses of BlueZ's libbluetooth (libbluetooth-dev), declared here as in its headers
// <bluetooth/bluetooth.h>, <bluetooth/hci_lib.h> and <bluetooth/rfcomm.h>. Those headers
// include <sys/socket.h>: a module that imported them would own Glibc's socket declarations
// (SOCK_STREAM, SOCK_CLOEXEC, ...), hiding them from every other file of the Swift module that
// happens to be compiled alongside. So only these few declarations, with the same layout.
#include <stdint.h>

// BlueZ's AF_BLUETOOTH and BTPROTO_RFCOMM.
#define WEFT_AF_BLUETOOTH 31
#define WEFT_BTPROTO_RFCOMM 3

// bdaddr_t: the address, least significant byte first; packed, 6 bytes.
typedef struct __attribute__((packed)) {
    uint8_t b[6];
} weft_bdaddr_t;

// struct sockaddr_rc: sa_family_t (16 bits), the adapter's address, the channel.
struct weft_sockaddr_rc {
    uint16_t rc_family;
    weft_bdaddr_t rc_bdaddr;
    uint8_t rc_channel;
};

_Static_assert(sizeof(weft_bdaddr_t) == 6, "bdaddr_t is 6 bytes");
_Static_assert(sizeof(struct weft_sockaddr_rc) == 10, "sockaddr_rc is 10 bytes");

// <bluetooth/hci_lib.h>: an adapter's id from "hciN" or its address; its address from the id.
int hci_devid(const char *str);
int hci_devba(int dev_id, weft_bdaddr_t *bdaddr);
#endif
