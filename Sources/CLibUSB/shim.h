#ifndef WEFT_CLIBUSB_SHIM_H
#define WEFT_CLIBUSB_SHIM_H
// libusb-1.0 from Debian's libusb-1.0-0-dev: the USB host side of weft's USB links.
#include <libusb.h>
#endif
