// The static agent (GANGWAY_STATIC_AGENT): hwloc's udev calls answered
// "no udev", since Debian ships no libudev.a; hwloc then reads sysfs alone,
// which is all the agent asks of it.
extern "C" {
struct udev;
struct udev_device;
udev* udev_new(void) { return nullptr; }
udev* udev_unref(udev*) { return nullptr; }
udev_device* udev_device_new_from_subsystem_sysname(udev*, const char*, const char*) {
  return nullptr;
}
udev_device* udev_device_unref(udev_device*) { return nullptr; }
const char* udev_device_get_property_value(udev_device*, const char*) { return nullptr; }
}
