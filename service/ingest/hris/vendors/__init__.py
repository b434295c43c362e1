"""The shipped mappings (<vendor>.toml) and their synthetic sample exports (<vendor>.csv),
package data so that `fairdraft hris import --mapping workday` finds them when installed."""
