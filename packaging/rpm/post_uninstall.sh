# indilookup %postun: on erase, remove the applet links made in %post (only
# links to indilookup); on upgrade, restart the daemon if it is running.
if [ "$1" -eq 0 ]; then
    for name in /usr/sbin/inlookup /usr/sbin/inquerytest /usr/sbin/vchkpass \
        /usr/libexec/indimail/imapmodules/authindi; do
        if [ -L "$name" ]; then
            case $(readlink "$name") in
            indilookup | */indilookup) rm -f "$name" ;;
            esac
        fi
    done
fi
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then
        systemctl try-restart inlookup.service >/dev/null 2>&1 || :
    fi
fi
exit 0
