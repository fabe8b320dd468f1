<?php
/**
 * Personal-data exporter and eraser for WordPress's privacy tools (Tools → Export/Erase Personal Data).
 *
 * @package KycBridge
 */

namespace KycBridge;

use WP_Error;

defined( 'ABSPATH' ) || exit;

/**
 * Both ask the bridge, which holds the data; the plugin itself stores none per person.
 */
final class Privacy {

	const KEY = 'kyc-bridge';

	/**
	 * Register the exporter.
	 *
	 * @param array $exporters Exporters.
	 * @return array
	 */
	public static function register_exporter( $exporters ) {
		$exporters[ self::KEY ] = array(
			'exporter_friendly_name' => __( 'Identity verification (KYC Bridge)', 'kyc-bridge' ),
			'callback'               => array( self::class, 'export' ),
		);
		return $exporters;
	}

	/**
	 * Register the eraser.
	 *
	 * @param array $erasers Erasers.
	 * @return array
	 */
	public static function register_eraser( $erasers ) {
		$erasers[ self::KEY ] = array(
			'eraser_friendly_name' => __( 'Identity verification (KYC Bridge)', 'kyc-bridge' ),
			'callback'             => array( self::class, 'erase' ),
		);
		return $erasers;
	}

	/**
	 * Export what the bridge holds on an email (one page: the bridge answers everything at once).
	 *
	 * @param string $email Email address.
	 * @param int    $page  Page (unused).
	 * @return array|WP_Error
	 */
	public static function export( $email, $page = 1 ) {
		unset( $page );
		$data = Bridge_Client::from_settings()->export( $email );
		if ( is_wp_error( $data ) ) {
			if ( self::is_not_found( $data ) ) {
				return array(
					'data' => array(),
					'done' => true,
				);
			}
			/* translators: %s: the reason. */
			return new WP_Error( 'kycb_export_failed', sprintf( __( 'The KYC bridge could not export this person\'s data: %s', 'kyc-bridge' ), $data->get_error_message() ) );
		}
		$group = array(
			'group_id'          => 'kyc-bridge',
			'group_label'       => __( 'Identity verification', 'kyc-bridge' ),
			'group_description' => __( 'What the KYC bridge holds about your identity verifications (Persona).', 'kyc-bridge' ),
		);
		$items = array();

		$items[] = $group + array(
			'item_id' => 'kyc-bridge-contact',
			'data'    => self::pairs(
				array(
					__( 'Email', 'kyc-bridge' )        => isset( $data['email'] ) ? $data['email'] : '',
					__( 'First name', 'kyc-bridge' )   => isset( $data['first_name'] ) ? $data['first_name'] : '',
					__( 'Reference id', 'kyc-bridge' ) => isset( $data['reference_id'] ) ? $data['reference_id'] : '',
				)
			),
		);
		foreach ( isset( $data['consents'] ) && is_array( $data['consents'] ) ? $data['consents'] : array() as $i => $consent ) {
			$items[] = $group + array(
				'item_id' => 'kyc-bridge-consent-' . $i,
				'data'    => self::pairs(
					array(
						__( 'Consent given', 'kyc-bridge' )     => isset( $consent['created_at'] ) ? $consent['created_at'] : '',
						__( 'User type', 'kyc-bridge' )         => isset( $consent['user_type'] ) ? $consent['user_type'] : '',
						__( 'Consent text version', 'kyc-bridge' ) => isset( $consent['text_version'] ) ? $consent['text_version'] : '',
						__( 'Given through', 'kyc-bridge' )     => isset( $consent['source'] ) ? $consent['source'] : '',
						__( 'Withdrawn', 'kyc-bridge' )         => isset( $consent['withdrawn_at'] ) ? $consent['withdrawn_at'] : '',
					)
				),
			);
		}
		foreach ( isset( $data['inquiries'] ) && is_array( $data['inquiries'] ) ? $data['inquiries'] : array() as $inquiry ) {
			$id      = isset( $inquiry['inquiry_id'] ) ? (string) $inquiry['inquiry_id'] : '';
			$items[] = $group + array(
				'item_id' => 'kyc-bridge-inquiry-' . $id,
				'data'    => self::pairs(
					array(
						__( 'Verification', 'kyc-bridge' ) => $id,
						__( 'Status', 'kyc-bridge' )       => isset( $inquiry['status'] ) ? $inquiry['status'] : '',
						__( 'User type', 'kyc-bridge' )    => isset( $inquiry['user_type'] ) ? $inquiry['user_type'] : '',
						__( 'Level', 'kyc-bridge' )        => isset( $inquiry['level'] ) ? $inquiry['level'] : '',
						__( 'Decided', 'kyc-bridge' )      => isset( $inquiry['decided_at'] ) ? $inquiry['decided_at'] : '',
					)
				),
			);
		}
		return array(
			'data' => $items,
			'done' => true,
		);
	}

	/**
	 * Erase the person at the bridge. KYC decisions are kept for legal reasons and said so.
	 *
	 * @param string $email Email address.
	 * @param int    $page  Page (unused).
	 * @return array|WP_Error
	 */
	public static function erase( $email, $page = 1 ) {
		unset( $page );
		$result = Bridge_Client::from_settings()->erase( $email );
		Kyc_Lookup::forget( $email );
		if ( is_wp_error( $result ) ) {
			if ( self::is_not_found( $result ) ) {
				return array(
					'items_removed'  => false,
					'items_retained' => false,
					'messages'       => array(),
					'done'           => true,
				);
			}
			/* translators: %s: the reason. */
			return new WP_Error( 'kycb_erase_failed', sprintf( __( 'The KYC bridge could not erase this person\'s data: %s', 'kyc-bridge' ), $result->get_error_message() ) );
		}
		$messages = array();
		foreach ( isset( $result['retained'] ) && is_array( $result['retained'] ) ? $result['retained'] : array() as $item ) {
			/* translators: %s: what the bridge kept and why. */
			$messages[] = sprintf( __( 'Retained for legal reasons: %s', 'kyc-bridge' ), (string) $item );
		}
		$redaction = isset( $result['persona_redaction'] ) ? (string) $result['persona_redaction'] : '';
		if ( 'requested' === $redaction ) {
			$messages[] = __( 'Persona was asked to redact the verification data it holds.', 'kyc-bridge' );
		} elseif ( 'not configured' === $redaction ) {
			$messages[] = __( 'Persona redaction is not configured on the bridge: redact the inquiries in Persona\'s dashboard.', 'kyc-bridge' );
		}
		return array(
			'items_removed'  => ! empty( $result['erased'] ),
			'items_retained' => ! empty( $result['retained'] ),
			'messages'       => $messages,
			'done'           => true,
		);
	}

	/**
	 * Whether the bridge said it holds nothing for this email.
	 *
	 * @param WP_Error $error Error.
	 * @return bool
	 */
	private static function is_not_found( WP_Error $error ) {
		$data = $error->get_error_data();
		return is_array( $data ) && isset( $data['status'] ) && 404 === (int) $data['status'];
	}

	/**
	 * Name/value pairs for the export, without empty values.
	 *
	 * @param array<string, mixed> $values Label → value.
	 * @return array<int, array{name: string, value: string}>
	 */
	private static function pairs( $values ) {
		$pairs = array();
		foreach ( $values as $name => $value ) {
			if ( null !== $value && '' !== $value ) {
				$pairs[] = array(
					'name'  => (string) $name,
					'value' => (string) $value,
				);
			}
		}
		return $pairs;
	}
}
