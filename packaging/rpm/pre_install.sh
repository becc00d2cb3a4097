# indilookup %pre: the indimail group and user, only when they are missing.
getent group indimail >/dev/null || groupadd -r indimail
if ! getent passwd indimail >/dev/null; then
    nologin=/usr/sbin/nologin
    [ -x "$nologin" ] || nologin=/sbin/nologin
    useradd -r -g indimail -d /var/indimail -M -s "$nologin" -c "IndiMail" indimail
fi
exit 0
