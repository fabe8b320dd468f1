<?php
/**
 * Server-to-server calls to the kyc-bridge API.
 *
 * @package KycBridge
 */

namespace KycBridge;

use WP_Error;

defined( 'ABSPATH' ) || exit;

/**
 * A thin client: JSON in and out, bearer token, errors that say what to fix.
 */
final class Bridge_Client {

	/**
	 * Base URL without trailing slash.
	 *
	 * @var string
	 */
	private $base;

	/**
	 * BRIDGE_ADMIN_TOKEN.
	 *
	 * @var string
	 */
	private $token;

	/**
	 * Seconds to wait for an answer.
	 *
	 * @var int
	 */
	private $timeout;

	/**
	 * Client for one bridge.
	 *
	 * @param string $base    Bridge base URL.
	 * @param string $token   Bearer token.
	 * @param int    $timeout Seconds.
	 */
	public function __construct( $base, $token, $timeout = 8 ) {
		$this->base    = untrailingslashit( (string) $base );
		$this->token   = (string) $token;
		$this->timeout = (int) $timeout;
	}

	/**
	 * The client for the saved settings.
	 *
	 * @return self
	 */
	public static function from_settings() {
		/**
		 * Seconds the plugin waits for the bridge.
		 *
		 * @param int $seconds Default 8.
		 */
		$timeout = (int) apply_filters( 'kycb_bridge_timeout', 8 );
		return new self( Settings::get( 'bridge_url' ), Settings::token(), $timeout );
	}

	/**
	 * Call the bridge.
	 *
	 * @param string     $method HTTP method.
	 * @param string     $path   Path below the base URL, starting with '/'.
	 * @param array|null $body   JSON body.
	 * @param bool       $auth   Send the bearer token.
	 * @return array|WP_Error Decoded JSON answer, or an error whose data holds 'status' and 'body'.
	 */
	public function request( $method, $path, $body = null, $auth = true ) {
		if ( '' === $this->base ) {
			return new WP_Error( 'kycb_not_configured', __( 'No bridge URL is set (Settings → KYC Bridge).', 'kyc-bridge' ) );
		}
		if ( $auth && '' === $this->token ) {
			return new WP_Error( 'kycb_no_token', __( 'No bridge token is set (Settings → KYC Bridge).', 'kyc-bridge' ) );
		}
		$headers = array(
			'Accept' => 'application/json',
		);
		if ( $auth ) {
			$headers['Authorization'] = 'Bearer ' . $this->token;
		}
		$args = array(
			'method'      => $method,
			'timeout'     => $this->timeout,
			'redirection' => 0,
			'headers'     => $headers,
			'user-agent'  => 'kyc-bridge-wordpress/' . VERSION,
		);
		if ( null !== $body ) {
			$args['headers']['Content-Type'] = 'application/json';
			$args['body']                    = wp_json_encode( $body );
		}
		$url      = $this->base . $path;
		$response = wp_remote_request( $url, $args );
		if ( is_wp_error( $response ) ) {
			return self::transport_error( $response, $this->base );
		}
		$status = (int) wp_remote_retrieve_response_code( $response );
		$data   = json_decode( wp_remote_retrieve_body( $response ), true );
		if ( $status >= 200 && $status < 300 && is_array( $data ) ) {
			return $data;
		}
		return self::http_error( $status, is_array( $data ) ? $data : array() );
	}

	/**
	 * An error for a non-2xx answer.
	 *
	 * @param int   $status HTTP status.
	 * @param array $data   Decoded body.
	 * @return WP_Error
	 */
	public static function http_error( $status, $data ) {
		$extra = array(
			'status' => $status,
			'body'   => $data,
		);
		if ( 401 === $status ) {
			return new WP_Error( 'kycb_bad_token', __( 'The bridge refused the token (HTTP 401): the saved token is neither the bridge\'s BRIDGE_ADMIN_TOKEN nor its BRIDGE_READ_TOKEN.', 'kyc-bridge' ), $extra );
		}
		if ( 403 === $status ) {
			return new WP_Error( 'kycb_read_only_token', __( 'The bridge refused this action (HTTP 403): the saved token is the read-only BRIDGE_READ_TOKEN. Admin pages and actions need BRIDGE_ADMIN_TOKEN.', 'kyc-bridge' ), $extra );
		}
		if ( 503 === $status ) {
			return new WP_Error( 'kycb_not_ready', __( 'The bridge is running but not ready (HTTP 503): its database is unreachable.', 'kyc-bridge' ), $extra );
		}
		$detail = isset( $data['error'] ) && is_string( $data['error'] ) ? $data['error'] : '';
		/* translators: 1: HTTP status code, 2: the bridge's error message. */
		$message = sprintf( __( 'The bridge answered HTTP %1$d. %2$s', 'kyc-bridge' ), $status, $detail );
		if ( 404 === $status && '' === $detail ) {
			$message .= __( 'Is the bridge URL the base address of the bridge (without /api/v1)?', 'kyc-bridge' );
		}
		return new WP_Error( 'kycb_http_' . $status, trim( $message ), $extra );
	}

	/**
	 * Turn a transport failure into a plain reason: bad TLS, timeout, blocked, or unreachable.
	 *
	 * @param WP_Error $error What the HTTP API said.
	 * @param string   $base  Bridge URL, for the message.
	 * @return WP_Error
	 */
	public static function transport_error( WP_Error $error, $base ) {
		$detail = $error->get_error_message();
		$extra  = array(
			'status' => 0,
			'detail' => $detail,
		);
		if ( 'http_request_not_executed' === $error->get_error_code() ) {
			/* translators: %s: the bridge URL. */
			return new WP_Error( 'kycb_blocked', sprintf( __( 'WordPress blocks outgoing requests to %s (WP_HTTP_BLOCK_EXTERNAL): add the bridge host to WP_ACCESSIBLE_HOSTS.', 'kyc-bridge' ), $base ), $extra );
		}
		if ( preg_match( '/SSL|TLS|certificate|cURL error (35|51|53|54|58|59|60|64|66|77|80|82|83|90|91)\b/i', $detail ) ) {
			/* translators: 1: the bridge URL, 2: the TLS library's message. */
			return new WP_Error( 'kycb_tls', sprintf( __( 'Bad TLS: the secure connection to %1$s failed (%2$s). Check the bridge\'s certificate (expired, self-signed or for another host name) and whether the URL should be http or https.', 'kyc-bridge' ), $base, $detail ), $extra );
		}
		if ( preg_match( '/cURL error 28|timed out/i', $detail ) ) {
			/* translators: %s: the bridge URL. */
			return new WP_Error( 'kycb_timeout', sprintf( __( 'The bridge at %s did not answer in time.', 'kyc-bridge' ), $base ), $extra );
		}
		/* translators: 1: the bridge URL, 2: the network library's message. */
		return new WP_Error( 'kycb_unreachable', sprintf( __( 'The bridge is unreachable at %1$s (%2$s). Check the URL and that the bridge is running.', 'kyc-bridge' ), $base, $detail ), $extra );
	}

	/**
	 * GET /readyz (no token).
	 *
	 * @return array|WP_Error
	 */
	public function readyz() {
		return $this->request( 'GET', '/readyz', null, false );
	}

	/**
	 * The person's KYC standing.
	 *
	 * @param string $email     Email address.
	 * @param string $user_type User type, or '' for any.
	 * @return array|WP_Error {email, status, user_type, level, decided_at}
	 */
	public function kyc_status( $email, $user_type = '' ) {
		$path = '/api/v1/contacts/' . rawurlencode( $email ) . '/kyc';
		if ( '' !== $user_type ) {
			$path .= '?user_type=' . rawurlencode( $user_type );
		}
		return $this->request( 'GET', $path );
	}

	/**
	 * The consent text the person must see (cached for ten minutes).
	 *
	 * @return array|WP_Error {version, sha256, intro, boxes{share_with_persona, persona_retention, gdpr_processing}}
	 */
	public function consent_text() {
		$cached = get_transient( 'kycb_consent_text' );
		if ( is_array( $cached ) ) {
			return $cached;
		}
		$text = $this->request( 'GET', '/api/v1/consent-text' );
		if ( ! is_wp_error( $text ) ) {
			set_transient( 'kycb_consent_text', $text, 10 * MINUTE_IN_SECONDS );
		}
		return $text;
	}

	/**
	 * Record consent and get what Persona's flow needs.
	 *
	 * @param array $body Session request (see the bridge's POST /api/v1/sessions).
	 * @param bool  $auth False for a visitor authorised by a link token.
	 * @return array|WP_Error
	 */
	public function start_session( $body, $auth = true ) {
		return $this->request( 'POST', '/api/v1/sessions', $body, $auth );
	}

	/**
	 * One page of inquiries.
	 *
	 * @param array $query status, user_type, email, page, per_page.
	 * @return array|WP_Error
	 */
	public function inquiries( $query ) {
		$query = array_filter(
			$query,
			function ( $value ) {
				return '' !== $value && null !== $value;
			}
		);
		return $this->request( 'GET', '/api/v1/inquiries' . ( $query ? '?' . http_build_query( $query ) : '' ) );
	}

	/**
	 * Counts, funnel and review queue.
	 *
	 * @return array|WP_Error
	 */
	public function stats() {
		return $this->request( 'GET', '/api/v1/stats' );
	}

	/**
	 * What the bridge holds on a person.
	 *
	 * @param string $email Email address.
	 * @return array|WP_Error
	 */
	public function export( $email ) {
		return $this->request( 'GET', '/api/v1/contacts/' . rawurlencode( $email ) . '/export' );
	}

	/**
	 * Erase a person at the bridge (KYC decisions are retained).
	 *
	 * @param string $email Email address.
	 * @return array|WP_Error
	 */
	public function erase( $email ) {
		return $this->request( 'POST', '/api/v1/contacts/' . rawurlencode( $email ) . '/erase', array() );
	}

	/**
	 * Several people's KYC standing in one call (the Users screen).
	 *
	 * @param string[] $emails Email addresses (at most 100).
	 * @return array|WP_Error {items: [{email, status, user_type, level, decided_at}]}
	 */
	public function kyc_statuses( $emails ) {
		$query = implode(
			'&',
			array_map(
				function ( $email ) {
					return 'email=' . rawurlencode( $email );
				},
				array_values( $emails )
			)
		);
		return $this->request( 'GET', '/api/v1/contacts/kyc?' . $query );
	}

	/**
	 * A person's detail: standing, consents, inquiries with their history, jobs with errors.
	 *
	 * @param string $email Email address.
	 * @return array|WP_Error
	 */
	public function contact( $email ) {
		return $this->request( 'GET', '/api/v1/contacts/' . rawurlencode( $email ) );
	}

	/**
	 * Queue a CRM sync of an inquiry's current state.
	 *
	 * @param string $inquiry_id Persona inquiry id.
	 * @return array|WP_Error {inquiry_id, queued}
	 */
	public function resync( $inquiry_id ) {
		return $this->request( 'POST', '/api/v1/inquiries/' . rawurlencode( $inquiry_id ) . '/resync', array() );
	}

	/**
	 * Re-queue dead and failed jobs: one person's, or all of them.
	 *
	 * @param string $email Email address, or '' for every job.
	 * @return array|WP_Error {requeued, count}
	 */
	public function retry_jobs( $email ) {
		return $this->request( 'POST', '/api/v1/jobs/retry', '' === $email ? array( 'all' => true ) : array( 'email' => $email ) );
	}

	/**
	 * Ask n8n to email the person a fresh verification link (the kyc.link_requested event).
	 *
	 * @param string $email     Email address.
	 * @param string $user_type User type, or '' for the person's newest.
	 * @return array|WP_Error {queued, user_type}
	 */
	public function resend_link( $email, $user_type = '' ) {
		return $this->request( 'POST', '/api/v1/contacts/' . rawurlencode( $email ) . '/resend-link', '' === $user_type ? array() : array( 'user_type' => $user_type ) );
	}

	/**
	 * Record a person's withdrawal of consent (the bridge then removes their KYC tags in
	 * FluentCRM and asks Persona to redact). Works with the read-only token too.
	 *
	 * @param string $email Email address.
	 * @return array|WP_Error {status: withdrawn}; 404 when the bridge holds no consent.
	 */
	public function withdraw_consent( $email ) {
		return $this->request( 'DELETE', '/api/v1/contacts/' . rawurlencode( $email ) . '/consent' );
	}

	/**
	 * Have n8n email a person (known or new) a verification link: the kyc.link_requested event.
	 *
	 * @param string $email      Email address.
	 * @param string $user_type  User type.
	 * @param string $first_name First name, or ''.
	 * @param string $key        Makes repeated requests (one order) one event, so n8n sends once.
	 * @return array|WP_Error {queued: true}
	 */
	public function send_link( $email, $user_type, $first_name = '', $key = '' ) {
		$body = array(
			'email'     => $email,
			'user_type' => $user_type,
			'send'      => true,
		);
		if ( '' !== $first_name ) {
			$body['first_name'] = $first_name;
		}
		if ( '' !== $key ) {
			$body['key'] = $key;
		}
		return $this->request( 'POST', '/api/v1/links', $body );
	}
}
