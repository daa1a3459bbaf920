import GimletHTTP

extension Session {
    /// Marks everything as changed: after mutating a value you got from the
    /// session in a way the session could not see, this makes it store it.
    ///
    /// - Throws: a backend failure (server-side values are loaded to be rewritten).
    public func save() throws {
        try loadServerData()
        for index in channels.indices {
            if !channels[index].client.isEmpty { channels[index].clientDirty = true }
            for (key, value) in channels[index].server { channels[index].writeServer(key, value) }
        }
    }

    /// Empties the session: both channels get fresh ids and no values, and
    /// their old server-side data is deleted at the end of the request.
    public func invalidate() {
        for index in channels.indices { startOver(index) }
    }

    /// Empties channel `index`: a fresh id when it needs one, no values, its
    /// old server-side data deleted at the end of the request.
    func startOver(_ index: Int) {
        if let old = channels[index].id, channels[index].mayHaveServerData, context.backend != nil {
            deletedIDs.append(old)
        }
        let hadCookie = channels[index].hadCookie || channels[index].hadBadCookie
        channels[index] = .fresh(permanent: channels[index].permanent, now: now)
        // The browser's old cookie must go, even if nothing new is stored.
        channels[index].hadBadCookie = hadCookie
    }

    /// Gives both channels new ids and keeps every value but the CSRF
    /// token, which is replaced: call it after a login, so neither an id
    /// planted before (session fixation) nor a token learned before is
    /// worth anything after it.
    ///
    /// - Throws: a backend failure (server-side values are read to move them).
    public func regenerateID() throws {
        try loadServerData()
        for index in channels.indices {
            guard let old = channels[index].id else { continue }
            if channels[index].mayHaveServerData, context.backend != nil { deletedIDs.append(old) }
            channels[index].id = .random()
            channels[index].hadCookie = false
            channels[index].mustReissue = true
            channels[index].removals = []
            channels[index].upserts = channels[index].server
        }
        // Where the session had a token, a new one in its place; none is
        // made where there was none (the next csrfToken() makes it).
        if knownPlace(of: Self.csrfKey) != nil { newCSRFToken() }
    }

    /// What the end of the request must do: one backend commit and the cookies to send.
    struct Outcome {
        var changes: [SessionChange]
        var cookies: [String]
    }

    /// Works out the commit and the `Set-Cookie` values.
    ///
    /// - Parameter secure: whether the request came over HTTPS (`Secure` cookies).
    /// - Throws: ``SessionError`` if a cookie would be too large for browsers.
    func outcome(secure: Bool) throws -> Outcome {
        let context = context
        var changes: [SessionChange] = []
        var cookies: [String] = []
        // Deletions go after every cookie that sets a value: curl 7.88
        // (Debian 12) keeps a deleted cookie in its jar when another
        // Set-Cookie follows the deletion in the same response, and would
        // send a signed-out session's cookie back.
        var deletions: [String] = []
        for id in deletedIDs {
            changes.append(SessionChange(id: id, removeAll: true, timeToLive: context.configuration.sessionTimeToLive))
        }
        prepareBindingForCommit(renewing: { renews($0) && channels[$0].mayHaveServerData })
        var stored: UInt8 = 0  // bit i: channel i is stored or renewed
        for index in channels.indices {
            var channel = channels[index]
            let ttl = timeToLive(of: index)
            let renewal = renews(index)
            let name = channel.permanent ? context.configuration.permanentCookieName : context.configuration.sessionCookieName

            let flagFlips = channel.hadCookie
                && (channel.willHaveServerData != channel.cookieSaysServerData || channel.isBound != channel.cookieSaysBound)
            let send = channel.clientDirty || channel.mustReissue || renewal || flagFlips
                || (!channel.hadCookie && (channel.holdsSomething || channel.idUsed))
            if send, channel.holdsSomething || channel.idUsed || channel.hadCookie {
                ensureID(index)
                channel = channels[index]
                guard let id = channel.id else { continue }
                let value = codec.encode(
                    CookiePayload(id: id, created: channel.created, issued: now, client: channel.client,
                                  hasServerData: channel.willHaveServerData, bound: channel.isBound),
                    cookieName: name)
                var cookie = baseCookie(name: name, value: value, secure: secure)
                if channel.permanent { cookie.maxAge = Int(context.configuration.permanentMaxAge) }
                let header = try cookie.headerValue()
                let line = "Set-Cookie: ".utf8.count + header.utf8.count
                guard line <= 4096 else { throw SessionError.cookieTooLarge(cookie: name, bytes: line) }
                cookies.append(header)
            } else if channel.hadBadCookie {
                // An unreadable or emptied cookie: tell the browser to drop it.
                var cookie = baseCookie(name: name, value: "", secure: secure)
                cookie.maxAge = 0
                cookie.expires = 0
                deletions.append(try cookie.headerValue())
            }

            guard context.backend != nil, let id = channel.id else { continue }
            if !channel.upserts.isEmpty || !channel.removals.isEmpty || (renewal && channel.mayHaveServerData) {
                changes.append(SessionChange(id: id, upserts: channel.upserts, removals: channel.removals,
                                             timeToLive: ttl, expected: channel.expectations(readKeys: readKeys)))
                if !channel.upserts.isEmpty || (renewal && channel.mayHaveServerData) { stored |= 1 << index }
            }
        }
        if let index = try bindingChanges(stored: { stored & 1 << $0 != 0 }) { changes.append(index) }
        return Outcome(changes: changes, cookies: cookies + deletions)
    }

    /// The idle lifetime of channel `index`'s server-side data.
    private func timeToLive(of index: Int) -> Int64 {
        channels[index].permanent ? context.configuration.permanentTimeToLive : context.configuration.sessionTimeToLive
    }

    /// Whether channel `index`'s cookie is old enough to be re-issued, and its data renewed.
    func renews(_ index: Int) -> Bool {
        channels[index].hadCookie
            && now - channels[index].issued >= min(context.configuration.renewAfter, timeToLive(of: index) / 2)
    }

    private func baseCookie(name: String, value: String, secure: Bool) -> SetCookie {
        SetCookie(name: name, value: value, path: context.configuration.cookiePath, domain: context.configuration.cookieDomain,
                  secure: secure || context.configuration.cookieSecure == .always, httpOnly: true,
                  sameSite: context.configuration.sameSite)
    }
}
