<?php
/**
 * The plugin's REST routes: start a verification (consent → bridge), read one's own state.
 *
 * @package KycBridge
 */

namespace KycBridge;

use WP_Error;
use WP_REST_Request;
use WP_REST_Response;

defined( 'ABSPATH' ) || exit;

/**
 * Routes under /wp-json/kyc-bridge/v1. The browser talks to these; only PHP talks to the bridge.
 */
final class Rest {

	const ROUTE_NAMESPACE = 'kyc-bridge/v1';

	/**
	 * The consent boxes, all required.
	 *
	 * @var string[]
	 */
	const BOXES = array( 'share_with_persona', 'persona_retention', 'gdpr_processing' );

	/**
	 * Register the routes (rest_api_init).
	 */
	public static function register_routes() {
		register_rest_route(
			self::ROUTE_NAMESPACE,
			'/sessions',
			array(
				'methods'             => 'POST',
				'callback'            => array( self::class, 'start_session' ),
				'permission_callback' => array( self::class, 'can_start_session' ),
				'args'                => array(
					'user_type'  => array(
						'type'     => 'string',
						'enum'     => Settings::USER_TYPES,
						'required' => false,
					),
					'link_token' => array(
						'type'              => 'string',
						'required'          => false,
						'sanitize_callback' => 'sanitize_text_field',
					),
					'consent'    => array(
						'type'     => 'object',
						'required' => true,
					),
				),
			)
		);
		register_rest_route(
			self::ROUTE_NAMESPACE,
			'/status',
			array(
				'methods'             => 'GET',
				'callback'            => array( self::class, 'status' ),
				'permission_callback' => array( self::class, 'can_read_status' ),
				'args'                => array(
					'type' => array(
						'type'     => 'string',
						'enum'     => array_merge( array( '' ), Settings::USER_TYPES ),
						'required' => false,
						'default'  => '',
					),
				),
			)
		);
	}

	/**
	 * The REST nonce of the page (X-WP-Nonce), checked for logged-in users and visitors alike.
	 *
	 * @param WP_REST_Request $request Request.
	 * @return true|WP_Error
	 */
	private static function check_nonce( WP_REST_Request $request ) {
		$nonce = (string) $request->get_header( 'X-WP-Nonce' );
		if ( '' === $nonce || ! wp_verify_nonce( $nonce, 'wp_rest' ) ) {
			return new WP_Error( 'kycb_bad_nonce', __( 'Your page has expired. Please reload it and try again.', 'kyc-bridge' ), array( 'status' => 403 ) );
		}
		return true;
	}

	/**
	 * A logged-in user who can read, or a visitor with a bridge link token; always with the nonce.
	 *
	 * @param WP_REST_Request $request Request.
	 * @return true|WP_Error
	 */
	public static function can_start_session( WP_REST_Request $request ) {
		$nonce = self::check_nonce( $request );
		if ( is_wp_error( $nonce ) ) {
			return $nonce;
		}
		if ( is_user_logged_in() ) {
			return current_user_can( 'read' ) ? true : new WP_Error( 'kycb_forbidden', __( 'Sorry, you cannot start a verification.', 'kyc-bridge' ), array( 'status' => 403 ) );
		}
		$link = $request->get_param( 'link_token' );
		if ( is_string( $link ) && '' !== $link ) {
			return true;
		}
		return new WP_Error( 'kycb_login_required', __( 'Please log in to verify your identity.', 'kyc-bridge' ), array( 'status' => 401 ) );
	}

	/**
	 * Only logged-in users read their own state.
	 *
	 * @param WP_REST_Request $request Request.
	 * @return true|WP_Error
	 */
	public static function can_read_status( WP_REST_Request $request ) {
		$nonce = self::check_nonce( $request );
		if ( is_wp_error( $nonce ) ) {
			return $nonce;
		}
		if ( ! is_user_logged_in() || ! current_user_can( 'read' ) ) {
			return new WP_Error( 'kycb_login_required', __( 'Please log in.', 'kyc-bridge' ), array( 'status' => 401 ) );
		}
		return true;
	}

	/**
	 * The consent answers; a WP_Error (422) naming the first missing box.
	 *
	 * @param mixed $raw Request's consent object.
	 * @return array|WP_Error
	 */
	public static function consent_answers( $raw ) {
		$raw     = is_array( $raw ) ? $raw : array();
		$consent = array();
		foreach ( self::BOXES as $box ) {
			if ( ! isset( $raw[ $box ] ) || true !== rest_sanitize_boolean( $raw[ $box ] ) ) {
				return new WP_Error(
					'kycb_consent_required',
					__( 'Please tick all three boxes to continue.', 'kyc-bridge' ),
					array(
						'status' => 422,
						'field'  => 'consent.' . $box,
					)
				);
			}
			$consent[ $box ] = true;
		}
		$version = isset( $raw['text_version'] ) ? sanitize_text_field( (string) $raw['text_version'] ) : '';
		if ( '' !== $version ) {
			$consent['text_version'] = $version;
		}
		return $consent;
	}

	/**
	 * POST /sessions: record consent at the bridge and answer what the page needs to open Persona.
	 *
	 * @param WP_REST_Request $request Request.
	 * @return WP_REST_Response|WP_Error
	 */
	public static function start_session( WP_REST_Request $request ) {
		$consent = self::consent_answers( $request->get_param( 'consent' ) );
		if ( is_wp_error( $consent ) ) {
			return $consent;
		}
		$client = Bridge_Client::from_settings();
		if ( is_user_logged_in() ) {
			$user  = wp_get_current_user();
			$type  = Frontend::user_type( $request->get_param( 'user_type' ) );
			$body  = array(
				'email'      => $user->user_email,
				'user_type'  => $type,
				'wp_user_id' => (int) $user->ID,
				'consent'    => $consent,
			);
			$first = trim( (string) $user->first_name );
			if ( '' !== $first ) {
				$body['first_name'] = $first;
			}
			$ip = self::client_ip();
			if ( '' !== $ip ) {
				$body['ip'] = $ip;
			}
			$agent = $request->get_header( 'User-Agent' );
			if ( $agent ) {
				$body['user_agent'] = substr( sanitize_text_field( $agent ), 0, 255 );
			}
			$result = $client->start_session( $body );
			Kyc_Lookup::forget( $user->user_email );
		} else {
			$result = $client->start_session(
				array(
					'link_token' => (string) $request->get_param( 'link_token' ),
					'consent'    => $consent,
				),
				false
			);
		}
		if ( is_wp_error( $result ) ) {
			return self::bridge_failure( $result, ! is_user_logged_in() );
		}
		return new WP_REST_Response( self::flow_answer( $result ), 201 );
	}

	/**
	 * What the browser gets: only what Persona's flow needs (never the bridge token).
	 *
	 * @param array $session The bridge's session answer.
	 * @return array
	 */
	public static function flow_answer( $session ) {
		$environment = Settings::get( 'environment_id' );
		if ( '' === $environment && ! empty( $session['environment_id'] ) ) {
			$environment = (string) $session['environment_id'];
		}
		$hosted = isset( $session['hosted_url'] ) ? (string) $session['hosted_url'] : '';
		if ( '' !== $environment && '' !== $hosted && false === strpos( $hosted, 'environment-id=' ) ) {
			$hosted = add_query_arg( 'environment-id', rawurlencode( $environment ), $hosted );
		}
		$pick = function ( $key ) use ( $session ) {
			return isset( $session[ $key ] ) && '' !== $session[ $key ] ? $session[ $key ] : null;
		};
		return array(
			'flow'           => Settings::get( 'flow' ),
			'template_id'    => $pick( 'template_id' ),
			'environment_id' => '' !== $environment ? $environment : null,
			'reference_id'   => $pick( 'reference_id' ),
			'inquiry_id'     => $pick( 'inquiry_id' ),
			'session_token'  => $pick( 'session_token' ),
			'fields'         => isset( $session['fields'] ) && is_array( $session['fields'] ) ? $session['fields'] : array(),
			'hosted_url'     => esc_url_raw( $hosted ),
			'resumed'        => ! empty( $session['resumed'] ),
		);
	}

	/**
	 * Map a bridge error to what the visitor may see.
	 *
	 * @param WP_Error $error   The client's error.
	 * @param bool     $by_link Whether the visitor came with a link token.
	 * @return WP_Error
	 */
	public static function bridge_failure( WP_Error $error, $by_link ) {
		$data   = $error->get_error_data();
		$status = is_array( $data ) && isset( $data['status'] ) ? (int) $data['status'] : 0;
		$body   = is_array( $data ) && isset( $data['body'] ) && is_array( $data['body'] ) ? $data['body'] : array();
		if ( 422 === $status ) {
			$field = isset( $body['field'] ) ? (string) $body['field'] : '';
			if ( 'consent.text_version' === $field ) {
				delete_transient( 'kycb_consent_text' );
				$message = __( 'The consent text has changed. Please reload the page and read it again.', 'kyc-bridge' );
			} else {
				$message = __( 'The verification could not start: please check your account details.', 'kyc-bridge' );
			}
			return new WP_Error(
				'kycb_rejected',
				$message,
				array(
					'status' => 422,
					'field'  => $field,
				)
			);
		}
		if ( 409 === $status ) {
			return new WP_Error(
				'kycb_manual_review',
				__( 'You have used all verification attempts. Our team will review your case and contact you.', 'kyc-bridge' ),
				array(
					'status'        => 409,
					'manual_review' => true,
				)
			);
		}
		if ( 429 === $status ) {
			return new WP_Error( 'kycb_rate_limited', __( 'Too many attempts. Please wait a minute and try again.', 'kyc-bridge' ), array( 'status' => 429 ) );
		}
		if ( $by_link && in_array( $status, array( 400, 401 ), true ) ) {
			return new WP_Error( 'kycb_bad_link', __( 'This verification link is not valid or has expired. Please ask for a new one.', 'kyc-bridge' ), array( 'status' => 403 ) );
		}
		return new WP_Error( 'kycb_unavailable', __( 'Verification is unavailable right now. Please try again later.', 'kyc-bridge' ), array( 'status' => 503 ) );
	}

	/**
	 * GET /status: the current user's state, fresh from the bridge.
	 *
	 * @param WP_REST_Request $request Request.
	 * @return WP_REST_Response|WP_Error
	 */
	public static function status( WP_REST_Request $request ) {
		$user = wp_get_current_user();
		$type = (string) $request->get_param( 'type' );
		delete_transient( Kyc_Lookup::cache_key( $user->user_email, $type ) );
		$answer = Kyc_Lookup::lookup( $user->user_email, $type );
		if ( is_wp_error( $answer ) ) {
			return new WP_Error( 'kycb_unavailable', __( 'We cannot check your verification right now. Please try again later.', 'kyc-bridge' ), array( 'status' => 503 ) );
		}
		$status = (string) $answer['status'];
		return new WP_REST_Response( array_merge( array( 'status' => $status ), Status::describe_answer( $answer ) ), 200 );
	}

	/**
	 * The visitor's address as PHP sees it (no proxy headers are trusted).
	 *
	 * @return string
	 */
	private static function client_ip() {
		$ip = isset( $_SERVER['REMOTE_ADDR'] ) ? sanitize_text_field( wp_unslash( $_SERVER['REMOTE_ADDR'] ) ) : '';
		return filter_var( $ip, FILTER_VALIDATE_IP ) ? $ip : '';
	}
}
