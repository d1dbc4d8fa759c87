/// The API's contract, served at `/openapi.yaml`.
enum OpenAPIDocument {
    static let yaml = #"""
        openapi: 3.0.3
        info:
          title: weft site API
          version: "1"
          description: |-
            The operator's HTTP API of one weft site (`restfulApi` in config.yaml, default
            listenAddr 127.0.0.1:18080, HTTPS when `restfulApi.tls.enabled`).

            Read endpoints follow kungze/wovenet's API (`/api/v1/site`, `/api/v1/remoteSites`,
            `/api/v1/localExposedApps`, `/api/v1/remoteApps`); weft adds runtime changes to the app
            lists (POST and DELETE, saved in stateDir and kept across restarts and reloads), tunnels
            and links, a speed test, Prometheus metrics and this document.

            Authentication: when `restfulApi.auth.basicAuth` lists users, every path (this document,
            `/ping` and `/metrics` included) requires HTTP Basic credentials of one of them, and a
            request without valid ones gets 401 with a `WWW-Authenticate` challenge. Without users
            the API is open to whoever reaches listenAddr.

            Errors are JSON objects `{"code": 400, "message": "...", "field": "appSocket"}` (the
            `Error` schema): `code` repeats the HTTP status, `field` names the request-body field at
            fault when there is one.
        servers:
          - url: http://127.0.0.1:18080
            description: The default listenAddr (use https:// when restfulApi.tls.enabled is true).
        security:
          - basicAuth: []
        tags:
          - name: site
            description: This site.
          - name: remoteSites
            description: Other sites of the mesh, as the message channel and the tunnels know them.
          - name: localExposedApps
            description: Local apps other sites may reach (config.yaml's localExposedApps, changed at run time).
          - name: remoteApps
            description: Apps of other sites offered on local sockets (config.yaml's remoteApps, changed at run time).
          - name: tunnels
            description: Tunnels to peers and the links they aggregate.
          - name: operations
            description: Liveness, metrics, the dashboard, this document and the speed test.
        paths:
          /:
            get:
              tags: [operations]
              operationId: getDashboard
              summary: The web dashboard
              description: A self-contained HTML page that reads the API from the browser.
              responses:
                "200":
                  description: The dashboard page.
                  content:
                    text/html:
                      schema:
                        type: string
                "401":
                  $ref: "#/components/responses/Unauthorized"
          /ping:
            get:
              tags: [operations]
              operationId: ping
              summary: Liveness check
              description: Answers as long as the API runs, whether or not the site has started.
              responses:
                "200":
                  description: The API is up.
                  content:
                    application/json:
                      schema:
                        $ref: "#/components/schemas/Ping"
                "401":
                  $ref: "#/components/responses/Unauthorized"
          /openapi.yaml:
            get:
              tags: [operations]
              operationId: getOpenAPIDocument
              summary: This OpenAPI document
              responses:
                "200":
                  description: The API's contract.
                  content:
                    application/yaml:
                      schema:
                        type: string
                "401":
                  $ref: "#/components/responses/Unauthorized"
          /metrics:
            get:
              tags: [operations]
              operationId: getMetrics
              summary: Prometheus metrics
              description: Every `weft_` series in the Prometheus text exposition format 0.0.4.
              responses:
                "200":
                  description: The metrics.
                  content:
                    text/plain:
                      schema:
                        type: string
                "401":
                  $ref: "#/components/responses/Unauthorized"
                "404":
                  description: Metrics are not collected in this process.
                  content:
                    application/json:
                      schema:
                        $ref: "#/components/schemas/Error"
          /api/v1/site:
            get:
              tags: [site]
              operationId: getSite
              summary: This site
              responses:
                "200":
                  description: This site's name, identity and version.
                  content:
                    application/json:
                      schema:
                        $ref: "#/components/schemas/Site"
                "401":
                  $ref: "#/components/responses/Unauthorized"
                "503":
                  $ref: "#/components/responses/ServiceUnavailable"
          /api/v1/remoteSites:
            get:
              tags: [remoteSites]
              operationId: listRemoteSites
              summary: List the other sites
              description: Sites online in the message channel and sites this site has a tunnel to, by name.
              responses:
                "200":
                  description: The remote sites, sorted by name.
                  content:
                    application/json:
                      schema:
                        type: array
                        items:
                          $ref: "#/components/schemas/RemoteSite"
                "401":
                  $ref: "#/components/responses/Unauthorized"
                "503":
                  $ref: "#/components/responses/ServiceUnavailable"
          /api/v1/remoteSites/{siteName}:
            parameters:
              - $ref: "#/components/parameters/SiteName"
            get:
              tags: [remoteSites]
              operationId: getRemoteSite
              summary: One other site
              responses:
                "200":
                  description: The remote site.
                  content:
                    application/json:
                      schema:
                        $ref: "#/components/schemas/RemoteSite"
                "401":
                  $ref: "#/components/responses/Unauthorized"
                "404":
                  $ref: "#/components/responses/NotFound"
                "503":
                  $ref: "#/components/responses/ServiceUnavailable"
          /api/v1/localExposedApps:
            get:
              tags: [localExposedApps]
              operationId: listLocalExposedApps
              summary: List the local exposed apps
              description: The apps in effect, from config.yaml and from the API.
              responses:
                "200":
                  description: The local exposed apps.
                  content:
                    application/json:
                      schema:
                        type: array
                        items:
                          $ref: "#/components/schemas/ExposedApp"
                "401":
                  $ref: "#/components/responses/Unauthorized"
                "503":
                  $ref: "#/components/responses/ServiceUnavailable"
            post:
              tags: [localExposedApps]
              operationId: addLocalExposedApp
              summary: Expose a local app
              description: >-
                Adds an exposed app at once, announces it to the other sites and saves it in stateDir,
                so it survives restarts and SIGHUP reloads. The body has exactly the keys of a
                `localExposedApps` entry of config.yaml; keys whose value is null or an empty list
                count as absent and `source` is ignored, so an app read with GET can be posted back.
                Unknown keys and keys the mode ignores are refused.
              requestBody:
                required: true
                content:
                  application/json:
                    schema:
                      $ref: "#/components/schemas/ExposedAppRequest"
                    examples:
                      single:
                        value:
                          appName: web
                          appSocket: tcp:127.0.0.1:8080
                      range:
                        value:
                          appName: vdi
                          mode: range
                          portRange: ["5900", "5901-5990"]
                          addressRange: [10.0.0.6, 10.0.2.0/24, "::1"]
              responses:
                "201":
                  description: The app was added; the body is the app as it is now in effect.
                  content:
                    application/json:
                      schema:
                        $ref: "#/components/schemas/ExposedApp"
                "400":
                  $ref: "#/components/responses/BadRequest"
                "401":
                  $ref: "#/components/responses/Unauthorized"
                "409":
                  $ref: "#/components/responses/Conflict"
                "413":
                  $ref: "#/components/responses/PayloadTooLarge"
                "500":
                  $ref: "#/components/responses/InternalError"
                "503":
                  $ref: "#/components/responses/ServiceUnavailable"
          /api/v1/localExposedApps/{appName}:
            parameters:
              - $ref: "#/components/parameters/AppName"
            get:
              tags: [localExposedApps]
              operationId: getLocalExposedApp
              summary: One local exposed app
              responses:
                "200":
                  description: The app.
                  content:
                    application/json:
                      schema:
                        $ref: "#/components/schemas/ExposedApp"
                "401":
                  $ref: "#/components/responses/Unauthorized"
                "404":
                  $ref: "#/components/responses/NotFound"
                "503":
                  $ref: "#/components/responses/ServiceUnavailable"
            delete:
              tags: [localExposedApps]
              operationId: deleteLocalExposedApp
              summary: Stop exposing a local app
              description: >-
                Removes the app at once, whether it came from config.yaml or from the API, ends its
                open streams and saves the removal in stateDir (an app of config.yaml stays removed
                until it is added again).
              responses:
                "204":
                  description: The app was removed.
                "401":
                  $ref: "#/components/responses/Unauthorized"
                "404":
                  $ref: "#/components/responses/NotFound"
                "500":
                  $ref: "#/components/responses/InternalError"
                "503":
                  $ref: "#/components/responses/ServiceUnavailable"
          /api/v1/remoteApps:
            get:
              tags: [remoteApps]
              operationId: listRemoteApps
              summary: List the remote apps
              description: The remote apps in effect, from config.yaml and from the API.
              responses:
                "200":
                  description: The remote apps.
                  content:
                    application/json:
                      schema:
                        type: array
                        items:
                          $ref: "#/components/schemas/RemoteApp"
                "401":
                  $ref: "#/components/responses/Unauthorized"
                "503":
                  $ref: "#/components/responses/ServiceUnavailable"
            post:
              tags: [remoteApps]
              operationId: addRemoteApp
              summary: Offer a remote app on a local socket
              description: >-
                Listens on localSocket at once (a Unix socket only inside restfulApi.socketDirectory,
                else 403; its directory is created and a stale socket file replaced) and saves the
                app in stateDir. The body has exactly the keys of
                a `remoteApps` entry of config.yaml; keys whose value is null or an empty list count
                as absent. A localSocket that cannot be opened is a 400 with field `localSocket`; a
                siteName/appName pair or a localSocket already in use is a 409.
              requestBody:
                required: true
                content:
                  application/json:
                    schema:
                      $ref: "#/components/schemas/RemoteAppRequest"
                    examples:
                      tcp:
                        value:
                          siteName: site02
                          appName: web
                          localSocket: tcp:127.0.0.1:28080
                      range:
                        value:
                          siteName: site03
                          appName: vdi
                          appSocket: tcp:10.0.2.123:5900
                          localSocket: tcp:127.0.0.1:5900
              responses:
                "201":
                  description: The app was added and its local socket is listening; the body is the app.
                  content:
                    application/json:
                      schema:
                        $ref: "#/components/schemas/RemoteApp"
                "400":
                  $ref: "#/components/responses/BadRequest"
                "401":
                  $ref: "#/components/responses/Unauthorized"
                "403":
                  description: A Unix localSocket outside restfulApi.socketDirectory (or none is set).
                  content:
                    application/json:
                      schema:
                        $ref: "#/components/schemas/Error"
                "409":
                  $ref: "#/components/responses/Conflict"
                "413":
                  $ref: "#/components/responses/PayloadTooLarge"
                "500":
                  $ref: "#/components/responses/InternalError"
                "503":
                  $ref: "#/components/responses/ServiceUnavailable"
          /api/v1/remoteApps/{appName}:
            parameters:
              - $ref: "#/components/parameters/AppName"
            get:
              tags: [remoteApps]
              operationId: getRemoteAppByName
              summary: One remote app, by app name alone
              description: wovenet's form. When several sites offer an app by this name, the first match.
              responses:
                "200":
                  description: The remote app.
                  content:
                    application/json:
                      schema:
                        $ref: "#/components/schemas/RemoteApp"
                "401":
                  $ref: "#/components/responses/Unauthorized"
                "404":
                  $ref: "#/components/responses/NotFound"
                "503":
                  $ref: "#/components/responses/ServiceUnavailable"
          /api/v1/remoteApps/{siteName}/{appName}:
            parameters:
              - $ref: "#/components/parameters/SiteName"
              - $ref: "#/components/parameters/AppName"
            get:
              tags: [remoteApps]
              operationId: getRemoteApp
              summary: One remote app
              responses:
                "200":
                  description: The remote app.
                  content:
                    application/json:
                      schema:
                        $ref: "#/components/schemas/RemoteApp"
                "401":
                  $ref: "#/components/responses/Unauthorized"
                "404":
                  $ref: "#/components/responses/NotFound"
                "503":
                  $ref: "#/components/responses/ServiceUnavailable"
            delete:
              tags: [remoteApps]
              operationId: deleteRemoteApp
              summary: Stop offering a remote app
              description: >-
                Closes the local socket at once, whether the app came from config.yaml or from the
                API, ends its client connections and saves the removal in stateDir.
              responses:
                "204":
                  description: The app was removed.
                "401":
                  $ref: "#/components/responses/Unauthorized"
                "404":
                  $ref: "#/components/responses/NotFound"
                "500":
                  $ref: "#/components/responses/InternalError"
                "503":
                  $ref: "#/components/responses/ServiceUnavailable"
          /api/v1/tunnels:
            get:
              tags: [tunnels]
              operationId: listTunnels
              summary: List the tunnels
              responses:
                "200":
                  description: One tunnel per peer, with its links.
                  content:
                    application/json:
                      schema:
                        type: array
                        items:
                          $ref: "#/components/schemas/Tunnel"
                "401":
                  $ref: "#/components/responses/Unauthorized"
                "503":
                  $ref: "#/components/responses/ServiceUnavailable"
          /api/v1/tunnels/{peer}:
            parameters:
              - name: peer
                in: path
                required: true
                description: The peer's site name.
                schema:
                  type: string
            get:
              tags: [tunnels]
              operationId: getTunnel
              summary: The tunnel to one peer
              responses:
                "200":
                  description: The tunnel.
                  content:
                    application/json:
                      schema:
                        $ref: "#/components/schemas/Tunnel"
                "401":
                  $ref: "#/components/responses/Unauthorized"
                "404":
                  $ref: "#/components/responses/NotFound"
                "503":
                  $ref: "#/components/responses/ServiceUnavailable"
          /api/v1/speedtest:
            get:
              tags: [operations]
              operationId: speedtest
              summary: Measure the tunnel's throughput to a site
              description: >-
                Sends data through the tunnel to `site` for `seconds` and streams the measurement as
                newline-delimited JSON (`application/x-ndjson`): one JSON object per line, `progress`
                lines about four times a second while it runs, then one `result` line, or an `error`
                line when the test fails after the stream started (the status is 200 by then).
              parameters:
                - name: site
                  in: query
                  required: true
                  description: The remote site to test to.
                  schema:
                    type: string
                    minLength: 1
                    maxLength: 255
                - name: seconds
                  in: query
                  required: false
                  description: How long to send, 1 to 60 seconds.
                  schema:
                    type: integer
                    minimum: 1
                    maximum: 60
                    default: 5
              responses:
                "200":
                  description: >-
                    The measurement, one `SpeedtestLine` object per line.
                  content:
                    application/x-ndjson:
                      schema:
                        $ref: "#/components/schemas/SpeedtestLine"
                      example: |
                        {"type":"progress","seconds":1.0,"bytes":125000000,"bitsPerSecond":1000000000}
                        {"type":"result","site":"site02","bytes":625000000,"seconds":5.0,"bitsPerSecond":1000000000,"verified":true,"verifiedBytes":625000000}
                "400":
                  description: A bad query, such as `seconds` not an integer from 1 to 60; `field` names the parameter.
                  content:
                    application/json:
                      schema:
                        $ref: "#/components/schemas/Error"
                "401":
                  $ref: "#/components/responses/Unauthorized"
                "404":
                  description: No site by that name.
                  content:
                    application/json:
                      schema:
                        $ref: "#/components/schemas/Error"
                "503":
                  description: >-
                    The site is not running, or no tunnel to the site had a link within 5 seconds.
                  content:
                    application/json:
                      schema:
                        $ref: "#/components/schemas/Error"
        components:
          securitySchemes:
            basicAuth:
              type: http
              scheme: basic
              description: >-
                Required only when `restfulApi.auth.basicAuth` in config.yaml lists users; then every
                path requires the credentials of one of them. Without users the API is open.
          parameters:
            SiteName:
              name: siteName
              in: path
              required: true
              description: A site name (1 to 255 bytes).
              schema:
                type: string
            AppName:
              name: appName
              in: path
              required: true
              description: An app name (1 to 255 bytes).
              schema:
                type: string
          responses:
            BadRequest:
              description: >-
                The body is not a JSON object, does not parse, or a value is invalid (an unknown key,
                a missing required key, a malformed socket, a key the mode ignores, a local socket that
                cannot be opened). `field` names the first field at fault; `message` lists every
                problem.
              content:
                application/json:
                  schema:
                    $ref: "#/components/schemas/Error"
                  example:
                    code: 400
                    message: "appSocket: expected tcp:IP:PORT, tcp:[IPv6]:PORT or unix:/path"
                    field: appSocket
            Unauthorized:
              description: Credentials are required (restfulApi.auth.basicAuth lists users) and none or wrong ones were sent.
              headers:
                WWW-Authenticate:
                  description: The Basic challenge.
                  schema:
                    type: string
                    example: 'Basic realm="weft", charset="UTF-8"'
              content:
                application/json:
                  schema:
                    $ref: "#/components/schemas/Error"
                  example:
                    code: 401
                    message: credentials required
            NotFound:
              description: No such site, app or tunnel.
              content:
                application/json:
                  schema:
                    $ref: "#/components/schemas/Error"
                  example:
                    code: 404
                    message: local exposed app web not found
            Conflict:
              description: >-
                The name or the local socket is taken already. `field` is `appName` for a local
                exposed app and `localSocket` for a remote app.
              content:
                application/json:
                  schema:
                    $ref: "#/components/schemas/Error"
                  example:
                    code: 409
                    message: an exposed app named "web" exists already
                    field: appName
            PayloadTooLarge:
              description: The request body is larger than 64 KiB.
              content:
                application/json:
                  schema:
                    $ref: "#/components/schemas/Error"
            InternalError:
              description: The change could not be saved in stateDir; nothing was applied.
              content:
                application/json:
                  schema:
                    $ref: "#/components/schemas/Error"
            ServiceUnavailable:
              description: The site is not running (not yet, or no longer).
              content:
                application/json:
                  schema:
                    $ref: "#/components/schemas/Error"
                  example:
                    code: 503
                    message: the site is not running
          schemas:
            Error:
              type: object
              required: [code, message]
              properties:
                code:
                  type: integer
                  description: The HTTP status code.
                  example: 400
                message:
                  type: string
                  description: What went wrong.
                field:
                  type: string
                  description: The request-body field at fault; absent when no field is.
                  example: appSocket
            Ping:
              type: object
              required: [message]
              properties:
                message:
                  type: string
                  enum: [pong]
            Site:
              type: object
              required: [siteName, fingerprint, version, uptimeSeconds]
              properties:
                siteName:
                  type: string
                  example: site01
                fingerprint:
                  type: string
                  description: The fingerprint of this site's certificate, which peers pin.
                version:
                  type: string
                  description: weft's release.
                  example: 0.1.0
                uptimeSeconds:
                  type: number
                  format: double
                  minimum: 0
            RemoteSite:
              type: object
              required: [siteName, online, endpoints, apps, tunnel]
              properties:
                siteName:
                  type: string
                online:
                  type: boolean
                  description: Whether the site is up in the message channel.
                fingerprint:
                  type: string
                  description: The certificate fingerprint it announces; absent when it is offline.
                endpoints:
                  type: array
                  description: The sockets it announces for links, HOST:PORT or [IPv6]:PORT; empty when offline.
                  items:
                    type: string
                    example: 203.0.113.7:54234
                apps:
                  type: array
                  description: The names of the apps it exposes; empty when offline.
                  items:
                    type: string
                softwareVersion:
                  type: string
                  description: The release it announces; absent when offline or not announced.
                tunnel:
                  type: boolean
                  description: Whether this site has a tunnel with at least one link to it.
            ExposedApp:
              type: object
              required: [appName, mode, appSocket, portRange, addressRange, allowedSites, source]
              properties:
                appName:
                  type: string
                  example: web
                mode:
                  type: string
                  enum: [single, range]
                appSocket:
                  type: string
                  nullable: true
                  description: The app's socket for mode single (tcp:IP:PORT, tcp:[IPv6]:PORT or unix:/path); null for mode range.
                  example: tcp:127.0.0.1:8080
                portRange:
                  type: array
                  description: For mode range, the ports a client may name (N or N-M); empty for mode single.
                  items:
                    type: string
                    example: 5901-5990
                addressRange:
                  type: array
                  description: For mode range, the addresses a client may name (IPs and CIDR blocks); empty for mode single.
                  items:
                    type: string
                    example: 10.0.2.0/24
                allowedSites:
                  type: array
                  description: The sites that may use the app; empty means every member of the mesh.
                  items:
                    type: string
                    example: site02
                source:
                  type: string
                  enum: [config, api]
                  description: Where the app comes from, config.yaml or the API.
            RemoteApp:
              type: object
              required: [siteName, appName, localSocket, appSocket, source]
              properties:
                siteName:
                  type: string
                  example: site02
                appName:
                  type: string
                  example: web
                localSocket:
                  type: string
                  description: Where this site listens for the app's clients, tcp:IP:PORT, tcp:[IPv6]:PORT or unix:/path.
                  example: tcp:127.0.0.1:28080
                localSocketMode:
                  type: string
                  nullable: true
                  description: For a unix:/path localSocket, the socket file's mode in octal; otherwise null.
                  example: "0660"
                appSocket:
                  type: string
                  nullable: true
                  description: For a range app, the target the far site connects to (tcp:IP:PORT); otherwise null.
                source:
                  type: string
                  enum: [config, api]
            Tunnel:
              type: object
              required: [peer, incarnation, peerIncarnation, openStreams, resentBytes, bytesSent, bytesReceived, links]
              properties:
                peer:
                  type: string
                  description: The peer's site name.
                incarnation:
                  type: string
                  description: This side's tunnel incarnation, hexadecimal.
                  example: 5f3a9c01
                peerIncarnation:
                  type: string
                  description: The peer's tunnel incarnation, hexadecimal.
                openStreams:
                  type: integer
                  minimum: 0
                resentBytes:
                  type: integer
                  minimum: 0
                  description: Bytes sent again on another link after a link was lost.
                bytesSent:
                  type: integer
                  format: int64
                  minimum: 0
                bytesReceived:
                  type: integer
                  format: int64
                  minimum: 0
                links:
                  type: array
                  items:
                    $ref: "#/components/schemas/Link"
            Link:
              type: object
              required: [id, dialed, state, inFlightBytes, bytesSent, bytesReceived]
              properties:
                id:
                  type: integer
                  format: int64
                  minimum: 0
                  maximum: 4294967295
                localAddress:
                  type: string
                  description: IP:PORT or [IPv6]:PORT; absent when unknown.
                remoteAddress:
                  type: string
                  description: IP:PORT or [IPv6]:PORT; absent when unknown.
                dialed:
                  type: boolean
                  description: Whether this site dialed the link (rather than accepted it).
                state:
                  type: string
                  enum: [up, suspect]
                  description: suspect while the link has stopped acknowledging and may be lost.
                rttMs:
                  type: number
                  format: double
                  description: Smoothed round-trip time in milliseconds; absent until measured.
                rateBitsPerSecond:
                  type: number
                  format: double
                  description: Estimated delivery rate; absent until measured.
                inFlightBytes:
                  type: integer
                  minimum: 0
                bytesSent:
                  type: integer
                  format: int64
                  minimum: 0
                bytesReceived:
                  type: integer
                  format: int64
                  minimum: 0
            ExposedAppRequest:
              type: object
              additionalProperties: false
              required: [appName]
              description: >-
                A `localExposedApps` entry of config.yaml. Mode single (the default) requires
                appSocket and refuses portRange and addressRange; mode range requires portRange and
                addressRange and refuses appSocket. null and [] count as absent. Keys match
                case-insensitively, as in config.yaml.
              properties:
                source:
                  type: string
                  description: Ignored (what a GET adds), so a listed app can be posted back.
                appName:
                  type: string
                  minLength: 1
                  description: 1 to 255 bytes, no control characters, unique on this site.
                mode:
                  type: string
                  nullable: true
                  enum: [single, range, null]
                  default: single
                appSocket:
                  type: string
                  nullable: true
                  description: tcp:IP:PORT, tcp:[IPv6]:PORT or unix:/path; not an unspecified address.
                  example: tcp:127.0.0.1:8080
                portRange:
                  type: array
                  nullable: true
                  description: Ports N or ranges N-M, 1 to 65535.
                  items:
                    oneOf:
                      - type: string
                        example: 5901-5990
                      - type: integer
                        minimum: 1
                        maximum: 65535
                addressRange:
                  type: array
                  nullable: true
                  description: IP addresses and CIDR blocks, IPv4 and IPv6; no host names.
                  items:
                    type: string
                    example: 10.0.2.0/24
                allowedSites:
                  type: array
                  nullable: true
                  description: The sites that may use the app (each refused one gets a stream reset "not allowed", logged at both ends); absent or empty means every member.
                  items:
                    type: string
                    example: site02
            RemoteAppRequest:
              type: object
              additionalProperties: false
              required: [siteName, appName, localSocket]
              description: >-
                A `remoteApps` entry of config.yaml. null and [] count as absent. Keys match
                case-insensitively, as in config.yaml.
              properties:
                source:
                  type: string
                  description: Ignored (what a GET adds), so a listed app can be posted back.
                siteName:
                  type: string
                  minLength: 1
                  description: The site offering the app; not this site's own name.
                appName:
                  type: string
                  minLength: 1
                localSocket:
                  type: string
                  description: >-
                    tcp:IP:PORT, tcp:[IPv6]:PORT or unix:/path. A Unix socket must lie inside
                    restfulApi.socketDirectory (403 otherwise); its directory is created, a stale
                    socket file replaced, a live one or another file never.
                  example: tcp:127.0.0.1:28080
                localSocketMode:
                  type: string
                  nullable: true
                  description: For a unix:/path localSocket, the socket file's mode in octal (default "0660").
                  example: "0660"
                appSocket:
                  type: string
                  nullable: true
                  description: For a range app, the target the far site connects to; TCP only.
                  example: tcp:10.0.2.123:5900
            SpeedtestLine:
              description: One line of the speed test's stream.
              oneOf:
                - $ref: "#/components/schemas/SpeedtestProgress"
                - $ref: "#/components/schemas/SpeedtestResult"
                - $ref: "#/components/schemas/SpeedtestError"
              discriminator:
                propertyName: type
                mapping:
                  progress: "#/components/schemas/SpeedtestProgress"
                  result: "#/components/schemas/SpeedtestResult"
                  error: "#/components/schemas/SpeedtestError"
            SpeedtestProgress:
              type: object
              required: [type, seconds, bytes, bitsPerSecond]
              properties:
                type:
                  type: string
                  enum: [progress]
                seconds:
                  type: number
                  format: double
                  description: Seconds since the test started.
                bytes:
                  type: integer
                  format: int64
                  minimum: 0
                  description: Bytes sent so far.
                bitsPerSecond:
                  type: number
                  format: double
                  description: The sending rate since the previous progress line.
            SpeedtestResult:
              type: object
              required: [type, site, bytes, seconds, bitsPerSecond, verified, verifiedBytes]
              properties:
                type:
                  type: string
                  enum: [result]
                site:
                  type: string
                bytes:
                  type: integer
                  format: int64
                  minimum: 0
                  description: Bytes the far site received.
                seconds:
                  type: number
                  format: double
                  description: How long the test took.
                bitsPerSecond:
                  type: number
                  format: double
                  description: The throughput over the whole test.
                verified:
                  type: boolean
                  description: Whether the far site received every byte intact.
                verifiedBytes:
                  type: integer
                  format: int64
                  minimum: 0
            SpeedtestError:
              type: object
              required: [type, message]
              properties:
                type:
                  type: string
                  enum: [error]
                message:
                  type: string
        """#
}
